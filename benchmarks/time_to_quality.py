"""Time to quality: phase SSIM against wall seconds for the iterative engines, started flat (cold)
and from the PtychoPINN reconstruction (warm), with PtychoPINN's own point; the quality-matched
speed ratio of PtychoPINN against each engine.

Reads a finished study (``make demo`` writes ``study-output``): the test split of each view at
dose 1e4 (phase C's baseline, phase D's views) and the PtychoPINN bundle trained on that view
(phase E: gridsize 1 on the baseline, the view's gridsize elsewhere). For each view:

* PtychoPINN reconstructs the test split (inference, no refinement): its seconds and score.
* Each engine runs ``--iterations`` iterations cold (flat start) and warm (started from that
  reconstruction, ``ptypinn.io.reconstruction.starting_object``; never from the ground truth),
  keeping its object at ``--checkpoints`` outside its clock (``EngineOptions.checkpoints``); a
  warm run's seconds include the network's.
* Every object is scored after the runs as the study scores them (``quality_curve``: each with
  its own alignment).

Derived for each engine: ``cold_final`` (its score after all iterations) and ``cold_seconds``;
``warm_seconds_to_cold_final`` (the first warm checkpoint at least as good, network included) and
its share of ``cold_seconds`` (target: at most 0.5); ``cold_seconds_to_pinn`` (the cold curve's
time to PtychoPINN's score, linear between checkpoints) and ``speed_ratio`` =
``cold_seconds_to_pinn / pinn seconds``: how many times faster the network reaches its quality
than the engine does.

Usage:
  python benchmarks/time_to_quality.py --study study-output \
      --json benchmarks/results/time_to_quality.json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

from report import emit, environment

from ptypinn.analysis.quality_time import first_at, seconds_to
from ptypinn.engines.api import ENGINE_OPTIONS, ENGINES
from ptypinn.engines.registry import iterative_reconstructor
from ptypinn.io.dataset import load_dataset
from ptypinn.io.reconstruction import ReconstructionInput, starting_object
from ptypinn.pinn.inference import PtychoPINNOptions, PtychoPINNReconstructor
from ptypinn.study.design import MetricsConfig
from ptypinn.study.layout import split_path, training_folder
from ptypinn.study.scoring import quality_curve

from view_data import test_scores

DOSE = 1e4
VIEWS = {"baseline": 1, "dense": 2}  # view: the gridsize the study trains on it


def curve(rec, test, offset: float = 0.0) -> list[dict]:
    """Every snapshot of ``rec`` scored as the study scores them (``quality_curve``): (iteration,
    seconds + ``offset``, phase SSIM)."""
    return [
        {"iteration": p.iteration, "seconds": round(p.seconds, 2), "phase_ssim": p.phase_ssim}
        for p in quality_curve(rec.snapshots, test, MetricsConfig(), offset)
    ]


def view_result(study: Path, view: str, gridsize: int, args: argparse.Namespace) -> dict:
    folder = None if view == "baseline" else view
    root = study / ("phase_c" if view == "baseline" else "phase_d")
    test = load_dataset(split_path(root, DOSE, "test", folder))
    inp = ReconstructionInput.from_dataset(test)
    bundle = training_folder(study / "phase_e", DOSE, view, gridsize) / "model.pt"
    options = PtychoPINNOptions(threads=args.threads)
    pinn = PtychoPINNReconstructor.from_bundle(bundle, options).reconstruct(inp)
    pinn_score = test_scores(pinn.obj, test)["phase_ssim"]
    result: dict = {
        "patterns": test.count,
        "pinn": {
            "gridsize": gridsize,
            "bundle": str(bundle),
            "seconds": round(pinn.wall_time_s, 2),
            "phase_ssim": pinn_score,
        },
    }
    warm_input = dataclasses.replace(inp, initial_object=starting_object(pinn))
    for engine in ENGINES:
        options = ENGINE_OPTIONS[engine](
            iterations=args.iterations, checkpoints=args.checkpoints, threads=args.threads
        )
        runs = {}
        for start, data, offset in (("cold", inp, 0.0), ("warm", warm_input, pinn.wall_time_s)):
            rec = iterative_reconstructor(engine, options).reconstruct(data)
            runs[start] = curve(rec, test, offset)
            print(f"{view} {engine} {start}: {runs[start][-1]}", flush=True)
        cold_final, cold_seconds = runs["cold"][-1]["phase_ssim"], runs["cold"][-1]["seconds"]
        warm_to_final = first_at(runs["warm"], cold_final)
        to_pinn = seconds_to(runs["cold"], pinn_score)
        result[engine] = {
            **runs,
            "cold_final": cold_final,
            "cold_seconds": cold_seconds,
            "warm_final": runs["warm"][-1]["phase_ssim"],
            "warm_seconds_to_cold_final": warm_to_final,
            "warm_share_of_cold_seconds": (
                None if warm_to_final is None else round(warm_to_final / cold_seconds, 3)
            ),
            "cold_seconds_to_pinn": None if to_pinn is None else round(to_pinn, 2),
            "speed_ratio": None if to_pinn is None else round(to_pinn / pinn.wall_time_s, 1),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--study", type=Path, default=Path("study-output"))
    parser.add_argument("--views", default=",".join(VIEWS))
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--checkpoints", default="0,1,2,5,10,20,30")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads of every method (as in the study)"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.checkpoints = tuple(int(c) for c in args.checkpoints.split(","))
    if args.iterations not in args.checkpoints:
        args.checkpoints = (*args.checkpoints, args.iterations)
    started = time.perf_counter()
    result: dict = {
        "benchmark": "time_to_quality",
        "study": str(args.study),
        "dose": DOSE,
        "iterations": args.iterations,
        "checkpoints": list(args.checkpoints),
        "threads": args.threads,
        "views": {},
    }
    for view in args.views.split(","):
        result["views"][view] = view_result(args.study, view, VIEWS[view], args)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    result["load_average"] = [round(value, 2) for value in os.getloadavg()]
    emit({**result, **environment()}, args.json)


if __name__ == "__main__":
    main()
