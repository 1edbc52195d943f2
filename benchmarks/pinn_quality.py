"""PtychoPINN quality and speed on the embedded default object (CPU by default).

Simulates the smoke geometry (N=64, 384 px object) at one dose, derives the overlap views, then
trains gridsize 1 and gridsize 2 for the same number of epochs on the chosen view's training
split and reconstructs its test split. Reports, per gridsize: training time, final loss, phase
and amplitude SSIM of the stitched test reconstruction after alignment (and, to separate fitting
from generalisation, of the training split it was fitted to), and inference throughput
(patterns/s: grouping, network, phase synchronisation and stitching).

Usage: python benchmarks/pinn_quality.py [--view dense] [--dose 1e4] [--epochs 60] [--width 1]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
from pathlib import Path

import torch

from ptypinn.analysis.metrics import score
from ptypinn.io.dataset import load_dataset
from ptypinn.io.reconstruction import ReconstructionInput
from ptypinn.pinn.inference import PtychoPINNReconstructor
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.pinn.train import JobSpec, train_model
from ptypinn.study.design import preset
from ptypinn.study.scoring import scored_region

from view_data import view_splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--view",
        default="dense",
        help="overlap view to train and test on, or 'baseline' (full scan)",
    )
    parser.add_argument("--dose", type=float, default=1e4)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--width", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--groups-per-position", type=float, default=1.0)
    parser.add_argument(
        "--augment", action="store_true", help="random flips/transposes of the training groups"
    )
    parser.add_argument("--gridsizes", default="1,2")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="folder for the data and models (default: a temporary one)",
    )
    args = parser.parse_args()

    design = preset("smoke").model_copy(update={"doses": (args.dose,)})
    training = design.training.model_copy(
        update={
            "epochs": args.epochs,
            "width": args.width,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "groups_per_position": args.groups_per_position,
            "validation_fraction": 0.0,
            "augment": args.augment,
        }
    )
    work = args.work or Path(tempfile.mkdtemp(prefix="ptypinn-bench-"))
    train_path, test_path = view_splits(design, args.view, args.dose, work)
    train, test = load_dataset(train_path), load_dataset(test_path)
    region = scored_region(test)
    options = TrainerOptions(logger="none", checkpoints=False, progress=False)
    results = []
    for gridsize in (int(g) for g in args.gridsizes.split(",")):
        spec = JobSpec(train_path, gridsize, design.neighbor_count, design.seeds.grouping, training)
        trained = train_model(spec, train, work / f"gs{gridsize}", options)
        pinn = PtychoPINNReconstructor.from_bundle(trained.bundle)
        pinn.reconstruct(ReconstructionInput.from_dataset(test))  # warm-up
        rec = pinn.reconstruct(ReconstructionInput.from_dataset(test))
        scores = score(rec.obj, test.obj, region)[2].values
        seen = pinn.reconstruct(ReconstructionInput.from_dataset(train))
        in_sample = score(seen.obj, train.obj, scored_region(train))[2].values
        results.append(
            {
                "gridsize": gridsize,
                "train_seconds": round(trained.wall_time_s, 1),
                "epochs": trained.epochs,
                "final_loss": trained.final_loss,
                "phase_ssim": scores["phase"]["ssim"],
                "amplitude_ssim": scores["amplitude"]["ssim"],
                "phase_frc50": scores["phase"]["frc50"],
                "train_split_phase_ssim": in_sample["phase"]["ssim"],
                "train_split_amplitude_ssim": in_sample["amplitude"]["ssim"],
                "inference_patterns_per_s": round(test.count / rec.wall_time_s, 1),
                "test_patterns": test.count,
            }
        )
    print(
        json.dumps(
            {
                "benchmark": "pinn_quality",
                "view": args.view,
                "dose": args.dose,
                "N": design.patch_size,
                "train_patterns": train.count,
                "training": training.model_dump(mode="json"),
                "results": results,
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "torch_threads": torch.get_num_threads(),
                "machine": platform.machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
