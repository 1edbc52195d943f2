"""Neighbour-grouping speed: make_groups on 1e4 and 1e5 uniformly random positions.

gridsize 2 (C = 4), K = 7, one group per position and 2x oversampling (K-choose-C pool).
Also times the minimum-spacing selection of the dense view at the same sizes.

Usage: python benchmarks/grouping.py [--repeats 3]
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
import scipy

from ptypinn.physics.grouping import make_groups
from ptypinn.physics.scan import select_min_spacing


def best_time(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return round(best, 4)


def measure(count: int, repeats: int) -> dict:
    # Density of a raster with a 10 px step, as in the study's scans.
    side = 10.0 * np.sqrt(count)
    positions = np.random.default_rng(0).uniform(0, side, size=(count, 2))
    return {
        "positions": count,
        "one_per_position_s": best_time(lambda: make_groups(positions, 2, 7), repeats),
        "oversampled_2x_s": best_time(
            lambda: make_groups(positions, 2, 7, n_groups=2 * count), repeats
        ),
        "select_min_spacing_19px_s": best_time(
            lambda: select_min_spacing(positions, 19.2, seed=456), repeats
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results = [measure(10_000, args.repeats), measure(100_000, args.repeats)]
    print(
        json.dumps(
            {
                "benchmark": "grouping",
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "numpy": np.__version__,
                    "scipy": scipy.__version__,
                },
                "gridsize": 2,
                "neighbor_count": 7,
                "results": results,
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "peak_rss_after_imports_mib": round(rss_before, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
