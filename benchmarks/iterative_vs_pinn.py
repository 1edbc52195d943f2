"""pty-chi LSQML, CDTools and PtychoPINN inference on the same data: aligned phase SSIM and time.

Data: the smoke preset (N=64) at dose 1e4 — the dense phase D view's test split when
``--phase-d-root`` holds it, else the baseline test split of ``--phase-c-root`` (simulated into a
temporary folder when no phase C root is given). The iterative engines run with the smoke
preset's options (``--iterations`` overrides them), one torch thread each. PtychoPINN uses
``--bundle`` (e.g. a study's ``phase_e/dose_10000/baseline/gs1/model.pt``) or, without one, a
model trained here on the matching training split with the smoke preset's settings
(``--epochs`` overrides its epochs; its training time is reported too). Every method runs
through the one reconstruction interface and is scored the same way, so all speed ratios come
from one run.

Scores use ``analysis.metrics.amplitude_phase_ssim`` on the rectangle of probe centres, the
scorer as it was before issue 12 revised the scoring.

Usage: python benchmarks/iterative_vs_pinn.py [--phase-c-root DIR] [--phase-d-root DIR]
       [--iterations N] [--bundle FILE] [--epochs N] [--output FILE]
Prints the JSON result and writes it to ``--output``
(default: benchmarks/results/iterative_vs_pinn.json).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from ptypinn.analysis.metrics import amplitude_phase_ssim, centre_box
from ptypinn.engines.api import ENGINE_LABELS, Reconstructor
from ptypinn.engines.registry import iterative_reconstructor
from ptypinn.io.artifacts import write_json
from ptypinn.io.dataset import PtychoDataset, load_dataset
from ptypinn.io.reconstruction import Reconstruction, ReconstructionInput
from ptypinn.pinn.inference import PtychoPINNReconstructor
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.pinn.train import JobSpec, train_model
from ptypinn.study.design import preset, with_iterative
from ptypinn.study.layout import split_path
from ptypinn.study.simulate import run_simulation

DOSE = 1e4
PINN = "PtychoPINN"
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "iterative_vs_pinn.json"


def summary(rec: Reconstruction, dataset: PtychoDataset) -> dict:
    """Quality and timing of one method's reconstruction of ``dataset`` (with ``objectGuess``)."""
    scores = amplitude_phase_ssim(
        rec.obj, dataset.obj, centre_box(dataset.positions, dataset.obj.shape)
    )
    row = {
        "method": rec.method,
        "iterations": rec.iterations,
        "wall_time_s": round(rec.wall_time_s, 3),
        "seconds_per_iteration": None
        if rec.seconds_per_iteration is None
        else round(rec.seconds_per_iteration, 4),
        "patterns_per_s": round(dataset.count * max(rec.iterations, 1) / rec.wall_time_s, 1),
        "phase_ssim": round(scores["phase_ssim"], 4),
        "amplitude_ssim": round(scores["amplitude_ssim"], 4),
    }
    if len(rec.losses):
        row.update(
            first_loss=float(rec.losses[0]),
            final_loss=float(rec.losses[-1]),
            loss=rec.metadata.get("loss"),
        )
    if "options" in rec.metadata:
        row["options"] = rec.metadata["options"]
    if "training" in rec.metadata:
        row["training_epochs"] = rec.metadata["training"]["epochs"]
    return row


def train_bundle(train_path: Path, gridsize: int, folder: Path, epochs: int | None) -> Path:
    design = preset("smoke")
    training = (
        design.training if epochs is None else design.training.model_copy(update={"epochs": epochs})
    )
    spec = JobSpec(train_path, gridsize, design.neighbor_count, design.seeds.grouping, training)
    options = TrainerOptions(logger="none", checkpoints=False, progress=False)
    return train_model(spec, load_dataset(train_path), folder, options).bundle


def benchmark_dataset(phase_c_root: Path, phase_d_root: Path | None) -> tuple[Path, str]:
    """The dense-view test file when phase D holds it, else the baseline test file."""
    if phase_d_root is not None:
        dense = split_path(phase_d_root, DOSE, "test", "dense")
        if dense.is_file():
            return dense, "dense"
    return split_path(phase_c_root, DOSE, "test"), "baseline"


def versions() -> dict:
    return {name: importlib.metadata.version(name) for name in ("torch", "cdtools-py", "ptychi")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-c-root", type=Path, default=None)
    parser.add_argument("--phase-d-root", type=Path, default=None)
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="iterations of every engine (default: the smoke preset's)",
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="trained PtychoPINN bundle (default: train one here)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of the bundle trained here (default: the smoke preset's)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    start, load = time.perf_counter(), os.getloadavg()
    iterative = with_iterative(preset("smoke"), iterations=args.iterations).iterative
    with tempfile.TemporaryDirectory() as scratch:
        phase_c_root = args.phase_c_root
        if phase_c_root is None:
            phase_c_root = Path(scratch)
            run_simulation(preset("smoke"), phase_c_root, doses=[DOSE])
        path, view = benchmark_dataset(phase_c_root, args.phase_d_root)
        dataset = load_dataset(path)
        gridsize = 1 if view == "baseline" else 2
        training_start = time.perf_counter()
        bundle = args.bundle or train_bundle(
            path.with_name("train.npz"), gridsize, Path(scratch) / "pinn", args.epochs
        )
        training_time = None if args.bundle else time.perf_counter() - training_start
        methods: dict[str, Reconstructor] = {
            ENGINE_LABELS[engine]: iterative_reconstructor(engine, iterative.options(engine))
            for engine in iterative.engines
        }
        methods[PINN] = PtychoPINNReconstructor.from_bundle(bundle)
        inp = ReconstructionInput.from_dataset(dataset)
        methods[PINN].reconstruct(inp)  # warm-up: first-call allocations are not inference speed
        results = {
            label: summary(method.reconstruct(inp), dataset) for label, method in methods.items()
        }
    results[PINN].update(
        bundle=str(args.bundle) if args.bundle else "trained here (temporary)",
        gridsize=gridsize,
        training_wall_time_s=None if training_time is None else round(training_time, 1),
    )
    lsqml, cdtools, pinn = (
        results[label]["wall_time_s"] for label in ("pty-chi LSQML", "CDTools", PINN)
    )
    report = {
        "benchmark": "iterative_vs_pinn",
        "command": " ".join(["python", "benchmarks/iterative_vs_pinn.py", *sys.argv[1:]]),
        "data": {
            "preset": "smoke",
            "dose": DOSE,
            "view": view,
            "split": "test",
            "patterns": dataset.count,
            "N": dataset.patch_size,
            "object_shape": list(dataset.obj.shape),
            "file": str(path) if args.phase_c_root else "simulated (temporary)",
        },
        "scorer": "analysis.metrics.amplitude_phase_ssim on the rectangle of probe centres after "
        "metrics.align: the pre-fix scorer (before issue 12)",
        "results": results,
        "speed_ratios": {
            "lsqml_over_cdtools_seconds_per_iteration": round(
                results["pty-chi LSQML"]["seconds_per_iteration"]
                / results["CDTools"]["seconds_per_iteration"],
                3,
            ),
            "lsqml_over_pinn_inference": round(lsqml / pinn, 1),
            "cdtools_over_pinn_inference": round(cdtools / pinn, 1),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1_5_15_at_start": [round(v, 2) for v in load],
            "platform": platform.platform(),
            "python": platform.python_version(),
            **versions(),
        },
        "threads": {
            "engines": {engine: iterative.options(engine).threads for engine in iterative.engines},
            "torch_intra_op": torch.get_num_threads(),
        },
        "wall_time_s": round(time.perf_counter() - start, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    write_json(args.output, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
