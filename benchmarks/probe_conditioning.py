"""How the illumination conditions the problem: each built-in probe kind on the smoke geometry.

For every probe kind (the design's own fields for each: ``disk`` N/2 across with 3 rad of defocus
at the rim, the old default; ``gaussian`` FWHM N/2; ``airy`` first dark ring N/2 across;
``zone_plate`` a 32 px beam with a 30% central stop, 400 um past the focus in the docstring's
units; ``diffuser`` the disk times a 1 rad rms phase screen of 4 px correlation, seed 0) the
smoke design is simulated at one dose and its baseline view (the full scan) is reconstructed by

* the per-pattern yardstick (``single_pattern_retrieval.per_pattern_point``, RAAR from a flat
  start; 20 and 100 iterations),
* the group yardstick (``group_retrieval.group_point``: groups of C = 4 as a gridsize-2 model
  sees them, 20 iterations, the default PtychoPINN's own input),
* CDTools at the preset's iterations (``pinn_learning_curve.cdtools_reference``),
* the default PtychoPINN (the preset's training: gridsize 2, group retrieval inputs, unrolled
  steps) trained for ``--samples`` on the training split (``pinn_learning_curve.trained_run``),
  with its input alone (the group retrieval it corrects, stitched without the network) beside it.

All scores are the study's scorer on the test split. Each probe's reconstructions are independent
tasks spread over ``--workers`` processes (one torch thread each), so times are per task.

Usage:
  OMP_NUM_THREADS=1 python benchmarks/probe_conditioning.py --workers 2 \
      --json benchmarks/results/probe_conditioning.json
Prints (and writes) one JSON object: per probe its parameters, footprint and scores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
from group_retrieval import group_point
from pinn_learning_curve import Milestones, cdtools_reference, curve_training, trained_run
from report import emit, environment
from single_pattern_retrieval import per_pattern_point

from ptypinn.io.dataset import load_dataset
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.study.design import ProbeConfig, StudyDesign, preset

from view_data import view_splits

PROBES = ("disk", "zone_plate", "diffuser", "gaussian", "airy")
YARDSTICKS = "yardsticks"  # the per-pattern and group retrievals and CDTools
PINN = "pinn"


def probe_design(kind: str, dose: float, samples: int, seed: int) -> StudyDesign:
    """The smoke design at ``dose`` with a probe of ``kind`` (its default fields) and the preset's
    training for a budget of ``samples`` (its augmentation uses the symmetries the probe keeps:
    none for the diffuser's)."""
    design = preset("smoke")
    simulation = design.simulation.model_copy(update={"probe": ProbeConfig(kind=kind)})
    training = curve_training(design.training, samples, seed)
    return design.model_copy(
        update={"doses": (dose,), "simulation": simulation, "training": training}
    )


def measure(task: tuple[str, str], dose: float, samples: int, seed: int, precision: str) -> dict:
    """One task, ``(probe kind, YARDSTICKS or PINN)``, on its own simulated data."""
    torch.set_num_threads(1)
    kind, column = task
    design = probe_design(kind, dose, samples, seed)
    work = Path(tempfile.mkdtemp(prefix=f"ptypinn-probe-{kind}-{column}-"))
    train_path, test_path = view_splits(design, "baseline", dose, work)
    test = load_dataset(test_path)
    started = time.perf_counter()
    if column == YARDSTICKS:
        out: dict = {
            "per_pattern": [per_pattern_point(test, iterations) for iterations in (20, 100)],
            "group": group_point(test, 4, design, design.training.retrieval_iterations),
            "cdtools": cdtools_reference(test, design.iterative.cdtools.iterations),
        }
    else:
        tracker = Milestones(
            [samples], test, None, design.neighbor_count, design.seeds.grouping, untrained=False
        )
        options = TrainerOptions(
            logger="none", checkpoints=False, progress=False, precision=precision
        )
        run = trained_run(design, 2, train_path, load_dataset(train_path), tracker, work, options)
        recipe = {"precision": precision, "samples": samples, "seed": seed}
        out = {"pinn": run | recipe | {"augment": design.training.augment}}
    print(
        json.dumps(
            {
                "probe": kind,
                "column": column,
                "seconds": round(time.perf_counter() - started, 1),
                **out,
            }
        ),
        flush=True,
    )
    return out | {"test_patterns": test.count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--dose", type=float, default=1e4)
    parser.add_argument("--probes", default=",".join(PROBES))
    parser.add_argument(
        "--pinn-probes", default=",".join(PROBES), help="the probes the PtychoPINN is trained on"
    )
    parser.add_argument("--samples", type=float, default=1e4, help="PtychoPINN training budget")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--remark", default=None, help="a note on the machine's load")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    probes = [kind for kind in args.probes.split(",") if kind]
    pinn_probes = [kind for kind in args.pinn_probes.split(",") if kind]
    if unknown := set(probes + pinn_probes) - set(PROBES):
        parser.error(f"unknown probe kinds {sorted(unknown)}; choose from {PROBES}")
    samples = int(args.samples)
    # the first two trainings (the old default and the candidate), then every probe's yardsticks,
    # then the other trainings: a run cut short still holds the comparison that matters most
    trainings = [(kind, PINN) for kind in pinn_probes]
    tasks = trainings[:2] + [(kind, YARDSTICKS) for kind in probes] + trainings[2:]
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")  # no torch state shared with a fork
    done: dict[tuple[str, str], dict] = {}
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        futures = {
            pool.submit(measure, task, args.dose, samples, args.seed, args.precision): task
            for task in tasks
        }
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            if args.json is not None:  # what is done so far, in case the run must be cut short
                write_atomic(args.json, summary(args, done, started, len(done) == len(tasks)))
    emit(summary(args, done, started, True), args.json)


def summary(args: argparse.Namespace, done: dict, started: float, complete: bool) -> dict:
    """The JSON result from the finished tasks ``done`` ({(kind, column): scores})."""
    design = preset("smoke")
    rows = []
    for kind in dict.fromkeys(kind for kind, _ in done):
        probe = ProbeConfig(kind=kind)
        diameter = probe_design(kind, args.dose, int(args.samples), args.seed).probe_diameter()
        row: dict = {"probe": probe.parameters(), "footprint_diameter_px": round(diameter, 1)}
        for column in (YARDSTICKS, PINN):
            row |= done.get((kind, column), {})
        rows.append(row)
    return {
        "benchmark": "probe_conditioning",
        "complete": complete,
        "view": "baseline",
        "dose": args.dose,
        "N": design.patch_size,
        "cdtools_iterations": design.iterative.cdtools.iterations,
        "pinn_probes": [kind for kind, column in done if column == PINN],
        "probes": rows,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "workers": args.workers,
        **environment(),
        "remark": args.remark,
    }


def write_atomic(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


if __name__ == "__main__":
    main()
