"""Simulation throughput (far field + Poisson noise) in patterns/s at N=64 and N=128.

Usage: python benchmarks/simulation_throughput.py [--repeats 3]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import numpy as np
import torch

from ptypinn.study.design import make_design
from ptypinn.study.simulate import clean_amplitudes, default_source, observe, scan_positions


def measure(patch_size: int, object_size: int, step: float, repeats: int) -> dict:
    design = make_design(
        {
            "patch_size": patch_size,
            "simulation": {"object_size": object_size, "scan": {"step_px": step, "jitter_px": 1.0}},
        }
    )
    source = default_source(design)
    positions = scan_positions(design, source.obj.shape)
    best_far, best_noise = float("inf"), float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        amplitudes = clean_amplitudes(source, positions)
        middle = time.perf_counter()
        observe(amplitudes, 1e4, seed=42)
        end = time.perf_counter()
        best_far, best_noise = min(best_far, middle - start), min(best_noise, end - middle)
    count = positions.shape[0]
    return {
        "N": patch_size,
        "patterns": count,
        "far_field_s": round(best_far, 4),
        "poisson_s": round(best_noise, 4),
        "patterns_per_s": round(count / (best_far + best_noise), 1),
        "far_field_patterns_per_s": round(count / best_far, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = [measure(64, 512, 7.5, args.repeats), measure(128, 640, 12.0, args.repeats)]
    print(
        json.dumps(
            {
                "benchmark": "simulation_throughput",
                "machine": {
                    "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(),
                    "torch": torch.__version__,
                    "numpy": np.__version__,
                },
                "results": results,
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
