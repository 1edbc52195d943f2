"""The full preset on one CUDA GPU, and what the README's cost table needs from the run.

Runs ``ptypinn study run --preset full --accelerator gpu --devices 1`` (through
:func:`ptypinn.study.runner.run_study`) into ``--output``, then writes the seconds of every
phase (``study_state.json``) and of every job (the training, reconstruction and inference
manifests; a training job's samples seen from its bundle) to one JSON object.

What runs where: the training jobs (phase E) train on the GPU, with bf16 autocast where the GPU
computes it (precision ``auto``) and, unless ``--deterministic``, without deterministic
algorithms: bit-reproducibility is the CPU's promise, and in deterministic mode torch refuses the
CUDA operations that have no deterministic version. Everything else runs on the CPU as it does
without a GPU: simulation and overlap; the engines (the CDTools and pty-chi adapters build their
models on the CPU), the CPU count of one-thread jobs at once; the PtychoPINN inference (bundles
load onto the CPU and ``study/infer.py`` gives them no device), the same way; the comparison.

Refuses to start, with exit status 2, where torch sees no CUDA GPU.

Usage:
  python benchmarks/full_preset_gpu.py --output full-study \
      --json benchmarks/results/full_preset_gpu.json
  python benchmarks/full_preset_gpu.py --output full-study --resume   # after an interruption
Prints (and writes) one JSON object: per phase its seconds, per job its seconds (and a training
job's epochs, samples seen and samples/s), the GPU, the machine, the CPU count, the load average
before and after and the wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from report import emit, environment

from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.pinn.train import load_bundle
from ptypinn.study.design import preset
from ptypinn.study.layout import INFERENCE_MANIFEST, RECONSTRUCTION_MANIFEST, TRAINING_MANIFEST
from ptypinn.study.records import (
    InferenceManifest,
    ReconstructionManifest,
    TrainingManifest,
    TrainingRecord,
    read_manifest,
)
from ptypinn.study.runner import run_study

DEVICE = {"train": "gpu"}  # every other step runs on the CPU (module docstring)


def training_job(record: TrainingRecord) -> dict:
    """A training job's seconds, epochs, and the samples its bundle saw."""
    job = {"job": record.label, "status": record.status, "seconds": record.wall_time_s}
    if record.status == "ok" and record.bundle is not None:
        _, meta = load_bundle(Path(record.artifact_dir) / record.bundle.path)
        seen = meta["samples_seen"]
        seconds = record.wall_time_s or 0.0
        job |= {
            "epochs": record.epochs,
            "samples": seen,
            "samples_per_s": round(seen / seconds, 1) if seconds else None,
        }
    return job


def recorded(root: Path, state: dict) -> dict:
    """The seconds of every step and job of the study in ``root``."""
    training = read_manifest(TrainingManifest, root / "phase_e" / TRAINING_MANIFEST)
    engines = read_manifest(ReconstructionManifest, root / "phase_f" / RECONSTRUCTION_MANIFEST)
    inference = read_manifest(InferenceManifest, root / "inference" / INFERENCE_MANIFEST)
    return {
        "phases": {
            name: {"seconds": step.get("seconds"), "device": DEVICE.get(name, "cpu")}
            for name, step in state["steps"].items()
        },
        "train": [training_job(record) for record in training.jobs],
        "iterative": [
            {
                "job": record.label,
                "status": record.status,
                "patterns": record.patterns,
                "iterations": record.iterations,
                "seconds": record.wall_time_s,
                "seconds_per_iteration": record.seconds_per_iteration,
            }
            for record in engines.jobs
        ],
        "infer": [
            {"job": record.label, "status": record.status, "seconds": record.wall_time_s}
            for record in inference.jobs
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--output", type=Path, default=Path("full-study"), help="study folder")
    parser.add_argument("--resume", action="store_true", help="keep finished steps and jobs")
    parser.add_argument(
        "--deterministic", action="store_true", help="deterministic algorithms in training"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(
            f"error: torch {torch.__version__} sees no CUDA GPU on this machine; this script "
            "times the full preset on one (benchmarks/full_preset_cost.py extrapolates it on "
            "the CPU)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    trainer = TrainerOptions(accelerator="gpu", devices=1, deterministic=args.deterministic)
    load = [round(value, 2) for value in os.getloadavg()]
    started = time.perf_counter()
    state = run_study(preset("full"), args.output, resume=args.resume, trainer=trainer)
    result = {
        "benchmark": "full_preset_gpu",
        "preset": "full",
        "output": str(args.output),
        "resumed": args.resume,
        "gpu": torch.cuda.get_device_name(0),
        "cuda": torch.version.cuda,
        "trainer": {"accelerator": "gpu", "devices": 1, "deterministic": args.deterministic},
        **recorded(args.output, state),
        "load_average": {"start": load, "end": [round(v, 2) for v in os.getloadavg()]},
        "wall_seconds": round(time.perf_counter() - started, 1),
        **environment(),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
