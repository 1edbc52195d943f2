"""CDTools against PtychoPINN inference on the same test data: phase SSIM after alignment and time.

Data: the smoke preset (N=64) at dose 1e4 — the dense phase D view's test split when
``--phase-d-root`` holds it, else the baseline test split of ``--phase-c-root`` (simulated into a
temporary folder when no phase C root is given). PtychoPINN uses ``--bundle`` (e.g. a study's
``phase_e/dose_10000/baseline/gs1/model.pt``) or, without one, a model trained here on the
matching training split with the smoke preset's settings (its training time is reported too).
Both reconstructions are scored the same way, so the speed ratio is measured in one run.

Usage: python benchmarks/iterative_vs_pinn.py [--phase-c-root DIR] [--phase-d-root DIR] [--iterations 100] [--bundle FILE]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
from pathlib import Path

import torch

from ptypinn.io.dataset import PtychoDataset, load_dataset
from ptypinn.study.design import preset
from ptypinn.pinn.inference import reconstruct as pinn_reconstruct
from ptypinn.engines.iterative import DEFAULT_ITERATIONS, ReconstructionInput, reconstruct
from ptypinn.study.layout import split_path
from ptypinn.analysis.metrics import amplitude_phase_ssim, centre_box
from ptypinn.study.simulate import run_simulation
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.pinn.train import JobSpec, load_bundle, train_model

DOSE = 1e4


def iterative_benchmark(dataset: PtychoDataset, iterations: int = DEFAULT_ITERATIONS, seed: int = 0) -> dict:
    """CDTools reconstruction of ``dataset`` (which must hold ``objectGuess``): quality and timing."""
    result = reconstruct(ReconstructionInput.from_dataset(dataset), iterations=iterations, seed=seed, progress="cdtools")
    scores = amplitude_phase_ssim(result.obj, dataset.obj, centre_box(dataset.positions, dataset.obj.shape))
    return {
        "engine": result.engine,
        "patterns": dataset.count,
        "N": dataset.patch_size,
        "object_shape": list(dataset.obj.shape),
        "iterations": result.iterations,
        "probe_refined": result.probe_refined,
        "settings": result.settings,
        "wall_time_s": round(result.wall_time_s, 3),
        "seconds_per_iteration": round(result.wall_time_s / result.iterations, 4),
        "patterns_per_s": round(dataset.count * result.iterations / result.wall_time_s, 1),
        "first_loss": float(result.losses[0]),
        "final_loss": float(result.losses[-1]),
        "phase_ssim": round(scores["phase_ssim"], 4),
        "amplitude_ssim": round(scores["amplitude_ssim"], 4),
        "scored_region": "rectangle spanned by the probe centres, after metrics.align",
    }


def pinn_benchmark(dataset: PtychoDataset, bundle: Path) -> dict:
    """PtychoPINN inference (grouping, network, phase synchronisation, stitching) on ``dataset``."""
    model, meta = load_bundle(bundle)
    pinn_reconstruct(model, dataset, meta["neighbor_count"], meta["grouping_seed"])  # warm-up
    result = pinn_reconstruct(model, dataset, meta["neighbor_count"], meta["grouping_seed"])
    scores = amplitude_phase_ssim(result.obj, dataset.obj, centre_box(dataset.positions, dataset.obj.shape))
    return {
        "bundle": str(bundle),
        "gridsize": meta["architecture"]["gridsize"],
        "training_epochs": len(meta["history"]),
        "patterns": dataset.count,
        "wall_time_s": round(result.wall_time_s, 3),
        "patterns_per_s": round(result.patterns_per_second, 1),
        "phase_ssim": round(scores["phase_ssim"], 4),
        "amplitude_ssim": round(scores["amplitude_ssim"], 4),
    }


def train_bundle(train_path: Path, gridsize: int, folder: Path) -> Path:
    design = preset("smoke")
    spec = JobSpec(train_path, gridsize, design.neighbor_count, design.seeds.grouping, design.training)
    return train_model(spec, load_dataset(train_path), folder, TrainerOptions(logger="none", checkpoints=False, progress=False)).bundle


def benchmark_dataset(phase_c_root: Path, phase_d_root: Path | None) -> tuple[Path, str]:
    """The dense-view test file when phase D holds it, else the baseline test file."""
    if phase_d_root is not None:
        dense = split_path(phase_d_root, DOSE, "test", "dense")
        if dense.is_file():
            return dense, "dense"
    return split_path(phase_c_root, DOSE, "test"), "baseline"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phase-c-root", type=Path, default=None)
    parser.add_argument("--phase-d-root", type=Path, default=None)
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    parser.add_argument("--bundle", type=Path, default=None, help="trained PtychoPINN bundle (default: train one here)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        phase_c_root = args.phase_c_root
        if phase_c_root is None:
            phase_c_root = Path(scratch)
            run_simulation(preset("smoke"), phase_c_root, doses=[DOSE])
        path, view = benchmark_dataset(phase_c_root, args.phase_d_root)
        dataset = load_dataset(path)
        result = iterative_benchmark(dataset, iterations=args.iterations)
        gridsize = 1 if view == "baseline" else 2
        bundle = args.bundle or train_bundle(path.with_name("train.npz"), gridsize, Path(scratch) / "pinn")
        pinn = pinn_benchmark(dataset, bundle)
    print(
        json.dumps(
            {
                "benchmark": "iterative_vs_pinn",
                "data": {"preset": "smoke", "dose": DOSE, "view": view, "split": "test", "file": str(path) if args.phase_c_root else "simulated (temporary)"},
                "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__},
                "iterative": result,
                "pinn": pinn,
                "speed_ratio_iterative_over_pinn_inference": round(result["wall_time_s"] / pinn["wall_time_s"], 1),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
