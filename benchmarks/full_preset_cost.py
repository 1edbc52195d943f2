"""The full preset's cost on this CPU: every phase of ``ptypinn study run --preset full``,
extrapolated from short runs measured at the preset's own sizes on one torch thread.

Method (the JSON's ``method``). One dose (``--dose``) is simulated and its views formed in full;
everything else is timed on those files:

* C, D: phase C and phase D of the one dose, timed in full; x the doses (the noise-free far
  field, computed once per run, is counted once per dose: an upper bound).
* E: the design's recipe trains for ``--train-samples`` samples at gridsize 1 on the baseline
  training split and at gridsize 2 on the dense one (``ptypinn.pinn.train.train_model``, the
  study's trainer options). Rate: samples per CPU second over the steps after the first. A job =
  its samples (epochs x the whole batches of its split's training groups) and its validation
  groups (epochs x 5%, counted as training samples: an upper bound) at that rate, plus what the
  short run spent outside those steps (loading, grouping, the first step, the bundle). Every
  gridsize-2 job trains at the dense view's rate.
* F: each engine runs 2 iterations on the baseline test split and on the sparse one (the largest
  and the smallest); a job = its 2-iteration run plus (iterations - 2) x the second iteration,
  each interpolated linearly in the test split's patterns between the two runs; plus the
  time-to-quality curve (one ``scoring.quality_curve`` over the design's checkpoints) and the
  written reconstruction (``study.outputs.save_reconstruction`` with the truth, whose figure
  aligns the reconstruction to it, as phase F writes it), both timed once.
* inference: each PtychoPINN method (untrained, the design's recipe: speed does not depend on the
  weights) reconstructs a compact block of ``--block`` test patterns (after a warm-up); a job =
  its test split's groups at that rate plus the written reconstruction as timed for phase F (an
  upper bound: inference writes its figure without the truth, so without that alignment).
  Refinement (when the design has it) adds its steps at the training rate.
* G: one ``analysis.metrics.score`` of a reconstruction of the full-size object x the methods
  scored; one scored region and one reconstruction grid (``analysis.report``, as many panels as
  the view with the most methods) x the doses and views. Its line plots and report are not
  timed.

Seconds are CPU seconds of this process (``time.process_time``, every thread), so a busy machine
slows the wall clock but not them; wall seconds are recorded beside each. Two cores: phase F and
inference run the CPU count of one-thread jobs at once, so their jobs are list-scheduled in plan
order on two workers; C, D, E and G run one thing at a time that may use both cores, which is not
measured here: their one-thread seconds stand as an upper bound.

Usage:
  OMP_NUM_THREADS=1 python benchmarks/full_preset_cost.py \
      --json benchmarks/results/full_preset_cost.json
  OMP_NUM_THREADS=1 python benchmarks/full_preset_cost.py --preset smoke   # a quick check
Prints (and writes) one JSON object: the patterns of every view, each measurement (CPU and wall
seconds, rates), every phase's extrapolated seconds on one thread and on two cores, the total in
CPU-hours, the machine, the threads and the load average before and after.
"""

from __future__ import annotations

import argparse
import heapq
import os
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from pinn_learning_curve import curve_training
from report import emit, environment

from ptypinn.analysis.metrics import region_box, score
from ptypinn.analysis.report import Panel, reconstruction_grid
from ptypinn.engines.registry import iterative_reconstructor
from ptypinn.io.dataset import PtychoDataset, load_dataset
from ptypinn.io.reconstruction import Reconstruction, ReconstructionInput, Snapshot
from ptypinn.pinn.inference import PtychoPINNOptions, PtychoPINNReconstructor, inference_groups
from ptypinn.pinn.model import input_alone
from ptypinn.pinn.runtime import resolved_precision
from ptypinn.pinn.train import JobSpec, PtychoDataModule, build_groups, build_model, train_model
from ptypinn.study.design import StudyDesign, preset, with_iterative
from ptypinn.study.infer import method_keys
from ptypinn.study.layout import split_path
from ptypinn.study.matrix import BASELINE, trained_view, training_gridsizes
from ptypinn.study.outputs import save_reconstruction
from ptypinn.study.overlap import run_overlap
from ptypinn.study.runner import study_trainer
from ptypinn.study.scoring import quality_curve, scored_region
from ptypinn.study.simulate import run_simulation

THREADS = 1
MEASURED_ITERATIONS = 2
REFINE_BATCH = PtychoPINNOptions().refine_batch_size  # groups per refinement step
METHOD = (
    "Short runs at the preset's sizes on one torch thread, timed in CPU seconds of this process: "
    "phases C and D of one dose in full, x the doses; training samples/s of the design's recipe "
    "at gridsize 1 (baseline) and 2 (dense) over the steps after the first, x the samples and "
    "validation groups of each job, plus the short run's other seconds; each engine's "
    "2-iteration run on the baseline and the sparse test split, interpolated linearly in "
    "patterns and extended by (iterations - 2) second iterations, plus one time-to-quality "
    "curve and one written reconstruction per job; each PtychoPINN method's groups/s on a "
    "compact block of test patterns x each job's groups, plus one written reconstruction; one "
    "score x the methods of each dose and view, one scored region and one reconstruction grid x "
    "the doses and views. Two cores: phase F and inference jobs list-scheduled in plan order on "
    "two one-thread workers; the other phases' one-thread seconds stand (an upper bound)."
)
NOT_INCLUDED = [
    "phase G's line plots (FRC, metric against dose, time to quality, overlap, probe) and its "
    "report; its reconstruction grids are included",
    "the runner's own work (SHA-256 of every file, manifests) and process start-up of the "
    "parallel jobs",
    "two cores for phases C, D, E and G (one job at a time on every thread): not measured",
]


class Clock:
    """Wall and CPU seconds (this process, every thread) since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> dict[str, float]:
        return {
            "cpu_s": round(time.process_time() - self.cpu, 3),
            "wall_s": round(time.perf_counter() - self.wall, 3),
        }


class StepClock(L.Callback):
    """The seconds of every training step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []
        self.clock = Clock()

    def on_train_batch_start(self, *args: object) -> None:
        self.clock = Clock()

    def on_train_batch_end(self, *args: object) -> None:
        self.steps.append(self.clock.read())


def summed(times: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(sum(t[key] for t in times), 3) for key in ("cpu_s", "wall_s")}


def makespan(seconds: list[float], workers: int) -> float:
    """Wall seconds of jobs handed, in order, to the first free of ``workers`` (a process pool)."""
    free = [0.0] * workers
    for job in seconds:
        heapq.heapreplace(free, free[0] + job)
    return max(free)


def interpolated(x: float, first: tuple[float, float], second: tuple[float, float]) -> float:
    """The line through two points, at ``x``."""
    (x0, y0), (x1, y1) = first, second
    return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def block(dataset: PtychoDataset, count: int) -> PtychoDataset:
    """The ``count`` positions nearest the scan's centre: a compact patch of the scan, whose
    groups find their neighbours as in the whole split."""
    distance = np.linalg.norm(dataset.positions - dataset.positions.mean(axis=0), axis=1)
    return dataset.subset(np.sort(np.argsort(distance)[:count]))


def phases_c_d(design: StudyDesign, work: Path) -> dict:
    """Phase C and D of ``design`` (one dose), timed, and the patterns each view keeps."""
    clock = Clock()
    simulation = run_simulation(design, work / "c")
    simulate = clock.read()
    clock = Clock()
    overlap = run_overlap(design, work / "c", work / "d")
    formed = overlap.doses[0].views
    patterns = {BASELINE: {s: simulation.doses[0].counts[s] for s in ("train", "test")}}
    patterns |= {v.view: {s: c["kept"] for s, c in v.counts.items()} for v in formed if v.formed}
    return {"simulate": simulate, "overlap": clock.read(), "patterns": patterns}


def split_file(work: Path, design: StudyDesign, view: str, part: str) -> Path:
    """The ``part`` (train or test) split of ``view`` at the measured dose."""
    root, folder = (work / "c", None) if view == BASELINE else (work / "d", view)
    return split_path(root, design.doses[0], part, folder)


def training_rate(design: StudyDesign, gridsize: int, path: Path, samples: int, work: Path) -> dict:
    """Samples per CPU second of a short training run, and its seconds outside the timed steps."""
    training = curve_training(design.training, samples, design.training.seed)
    spec = JobSpec(path, gridsize, design.neighbor_count, design.seeds.grouping, training)
    steps = StepClock()
    clock = Clock()
    train_model(spec, load_dataset(path), work / f"gs{gridsize}", study_trainer(), [steps])
    total = clock.read()
    timed = summed(steps.steps[1:])  # the first step warms up
    seen = (len(steps.steps) - 1) * training.batch_size
    return {
        "gridsize": gridsize,
        "data": f"{path.parent.name}/{path.name}",
        "samples_timed": seen,
        "steps": len(steps.steps),
        "timed_steps": timed,
        "samples_per_s": round(seen / timed["cpu_s"], 3),
        "wall_samples_per_s": round(seen / timed["wall_s"], 3),
        "other_cpu_s": round(total["cpu_s"] - timed["cpu_s"], 3),
        "total": total,
        "torch_threads_while_training": torch.get_num_threads(),
    }


def training_jobs(design: StudyDesign, work: Path, rates: dict[int, dict]) -> list[dict]:
    """Every training job of one dose: its samples, validation groups and seconds."""
    config = design.training
    jobs = []
    for view in (BASELINE, *design.view_names()):
        for gridsize in training_gridsizes(view, design.gridsizes):
            data = load_dataset(split_file(work, design, view, "train"))
            groups = build_groups(
                data,
                gridsize,
                design.neighbor_count,
                design.seeds.grouping,
                config.groups_per_position,
            )
            module = PtychoDataModule(
                range(len(groups)),  # only its length is read
                config.batch_size,
                config.validation_fraction,
                config.seed,
            )
            samples = config.epochs * len(module.train_dataloader()) * config.batch_size
            validation = config.epochs * len(module.validation or ())
            rate = rates[gridsize]
            seconds = rate["other_cpu_s"] + (samples + validation) / rate["samples_per_s"]
            jobs.append(
                {
                    "view": view,
                    "gridsize": gridsize,
                    "groups": len(groups),
                    "samples": samples,
                    "validation_groups": validation,
                    "seconds": round(seconds, 1),
                }
            )
    return jobs


def engine_run(design: StudyDesign, engine: str, dataset: PtychoDataset) -> dict:
    """A 2-iteration run: its CPU seconds, and those of its second iteration."""
    options = with_iterative(design, iterations=MEASURED_ITERATIONS).iterative.options(engine)
    marks: list[dict[str, float]] = []
    clock = Clock()
    rec = iterative_reconstructor(engine, options).reconstruct(
        ReconstructionInput.from_dataset(dataset), lambda _: marks.append(clock.read())
    )
    total = clock.read()
    return {
        "patterns": dataset.count,
        "total": total,
        "iteration": {key: round(marks[1][key] - marks[0][key], 3) for key in total},
        "reconstruction": rec,
    }


def engine_jobs(design: StudyDesign, runs: dict, patterns: dict, fixed: float) -> list[dict]:
    """Every phase F job of one dose (plan order: view, then engine): its seconds."""
    jobs = []
    for view in (BASELINE, *design.view_names()):
        count = patterns[view]["test"]
        for engine in design.iterative.engines:
            points = [(run["patterns"], run) for run in runs[engine].values()]
            total, iteration = (
                interpolated(count, *((n, run[key]["cpu_s"]) for n, run in points))
                for key in ("total", "iteration")
            )
            more = design.iterative.options(engine).iterations - MEASURED_ITERATIONS
            seconds = total + more * iteration + fixed
            jobs.append({"view": view, "engine": engine, "patterns": count, "seconds": seconds})
    return jobs


def inference_rate(
    design: StudyDesign, gridsize: int, alone: bool, train: Path, test: PtychoDataset, count: int
) -> dict:
    """Groups per CPU second of one PtychoPINN method on a compact block of ``test``."""
    torch.manual_seed(0)
    spec = JobSpec(train, gridsize, design.neighbor_count, design.seeds.grouping, design.training)
    model, _ = build_model(spec, load_dataset(train))
    model = input_alone(model) if alone else model
    assert model is not None  # the default recipe's generator is given a retrieval
    meta = {
        "neighbor_count": design.neighbor_count,
        "grouping_seed": design.seeds.grouping,
        "precision": resolved_precision(study_trainer()),  # what a bundle trained here records
    }
    reconstructor = PtychoPINNReconstructor(model, meta, PtychoPINNOptions(threads=THREADS))
    patch = block(test, count)
    reconstructor.reconstruct(ReconstructionInput.from_dataset(block(test, 16)))  # warm-up
    clock = Clock()
    reconstructor.reconstruct(ReconstructionInput.from_dataset(patch))
    seconds = clock.read()
    grouping = (design.neighbor_count, design.seeds.grouping)
    groups = len(inference_groups(patch.positions, gridsize, *grouping)[0])
    return {
        "patterns": patch.count,
        "groups": groups,
        "seconds": seconds,
        "groups_per_s": round(groups / seconds["cpu_s"], 3),
        "patterns_per_s": round(patch.count / seconds["cpu_s"], 3),
    }


def inference_jobs(
    design: StudyDesign, work: Path, rates: dict, training: dict, fixed: float
) -> list[dict]:
    """Every inference job of one dose (plan order: view, then method): its seconds."""
    jobs = []
    for view in (BASELINE, *design.view_names()):
        positions = load_dataset(split_file(work, design, view, "test")).positions
        for key in method_keys(design, view):
            if key.kind != "ptychopinn":
                continue  # a cold engine is phase F's (the presets warm-start none)
            rate = rates[f"gs{key.gridsize}" + ("_input_alone" if key.input_alone else "")]
            grouping = (design.neighbor_count, design.seeds.grouping)
            groups = len(inference_groups(positions, key.gridsize, *grouping)[0])
            refine = design.training.refine_steps * REFINE_BATCH if key.refine else 0
            seconds = groups / rate["groups_per_s"] + fixed
            seconds += refine / training[key.gridsize]["samples_per_s"]
            jobs.append({"view": view, "method": key.label, "groups": groups, "seconds": seconds})
    return jobs


def scoring(design: StudyDesign, test: PtychoDataset, rec: Reconstruction, work: Path) -> dict:
    """One scored region, one score, one reconstruction grid of the view with the most methods,
    one time-to-quality curve and one written reconstruction."""
    assert test.obj is not None  # simulated data hold their object
    out = {}
    clock = Clock()
    region = scored_region(test)
    out["scored_region"] = clock.read()
    clock = Clock()
    aligned, _, _ = score(
        rec.obj, test.obj, region, design.metrics.max_shift_px, design.metrics.ms_ssim_sigma
    )
    out["score"] = clock.read()
    shown = np.where(region, aligned, np.nan)[region_box(region)]  # as phase G shows them
    methods = max(len(method_keys(design, view)) for view in design.view_names())
    names = ["ground truth", *(f"method {i}" for i in range(methods))]
    panels = [Panel(design.doses[0], BASELINE, name, shown) for name in names]
    clock = Clock()
    reconstruction_grid(panels, design.doses[0], BASELINE, work / "grid.png")
    out["reconstruction_grid"] = {**clock.read(), "panels": len(panels)}
    checkpoints = design.iterative.options(design.iterative.engines[0]).checkpoints
    snapshots = [Snapshot(iteration, 0.0, rec.obj) for iteration in checkpoints]
    clock = Clock()
    quality_curve(snapshots, test, design.metrics)
    out["quality_curve"] = {**clock.read(), "snapshots": len(snapshots)}
    clock = Clock()
    save_reconstruction(work / "saved", rec, test.obj, design.doses[0], BASELINE, "CDTools")
    out["save_reconstruction"] = clock.read()
    return out


def phase(one_thread: float, two_cores: float, measured: str) -> dict:
    return {
        "seconds_1_thread": round(one_thread, 1),
        "seconds_2_cores": round(two_cores, 1),
        "measured": measured,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--preset", default="full", choices=("full", "smoke"))
    parser.add_argument("--dose", type=float, default=1e4, help="the dose simulated and timed")
    parser.add_argument("--train-samples", type=int, default=128, help="per training run")
    parser.add_argument("--block", type=int, default=160, help="test patterns per inference run")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None, help="folder for the data (a temp)")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    full = preset(args.preset)
    if full.methods != ("pinn",) or full.iterative.warm_start:
        raise SystemExit("only designs with the PINN recipe and no warm start are timed here")
    design = full.model_copy(update={"doses": (args.dose,)})
    doses = len(full.doses)
    load = [round(value, 2) for value in os.getloadavg()]
    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="ptypinn-cost-"))

    data = phases_c_d(design, work)
    patterns = data["patterns"]
    train = {
        gridsize: training_rate(
            design,
            gridsize,
            split_file(work, design, view, "train"),
            args.train_samples,
            work / "e",
        )
        for gridsize, view in ((1, BASELINE), (2, design.view_names()[0]))
    }
    train_jobs = training_jobs(design, work, train)

    test = load_dataset(split_file(work, design, BASELINE, "test"))
    sparse = load_dataset(split_file(work, design, design.view_names()[-1], "test"))
    runs = {
        engine: {
            BASELINE: engine_run(design, engine, test),
            "sparse": engine_run(design, engine, sparse),
        }
        for engine in design.iterative.engines
    }
    reconstruction = runs[design.iterative.engines[0]]["baseline"]["reconstruction"]
    scores = scoring(design, test, reconstruction, work)
    per_job = scores["quality_curve"]["cpu_s"] + scores["save_reconstruction"]["cpu_s"]
    engine_plan = engine_jobs(design, runs, patterns, per_job)

    dense = load_dataset(split_file(work, design, design.view_names()[0], "test"))
    infer = {}
    for gridsize, view, data_view in ((1, BASELINE, test), (2, design.view_names()[0], dense)):
        trained = split_file(work, design, trained_view(view, gridsize), "train")
        for alone in (False, True):
            name = f"gs{gridsize}" + ("_input_alone" if alone else "")
            infer[name] = inference_rate(design, gridsize, alone, trained, data_view, args.block)
    infer_plan = inference_jobs(design, work, infer, train, scores["save_reconstruction"]["cpu_s"])
    scored = sum(len(method_keys(design, view)) for view in (BASELINE, *design.view_names()))
    compare = (
        scored * scores["score"]["cpu_s"]
        + (1 + len(design.views)) * (scores["scored_region"]["cpu_s"])
    )

    def jobs_seconds(jobs: list[dict]) -> list[float]:
        return [job["seconds"] for job in jobs] * doses

    phases = {
        "simulate": phase(
            data["simulate"]["cpu_s"] * doses,
            data["simulate"]["cpu_s"] * doses,
            "phase C of one dose, x the doses",
        ),
        "overlap": phase(
            data["overlap"]["cpu_s"] * doses,
            data["overlap"]["cpu_s"] * doses,
            "phase D of one dose, x the doses",
        ),
        "train": phase(
            sum(jobs_seconds(train_jobs)),
            sum(jobs_seconds(train_jobs)),
            f"{len(train_jobs) * doses} jobs at the measured samples/s (gs1 baseline, gs2 dense)",
        ),
        "iterative": phase(
            sum(jobs_seconds(engine_plan)),
            makespan(jobs_seconds(engine_plan), 2),
            f"{len(engine_plan) * doses} jobs: 2-iteration runs on the baseline and sparse test "
            "splits, interpolated in patterns",
        ),
        "infer": phase(
            sum(jobs_seconds(infer_plan)),
            makespan(jobs_seconds(infer_plan), 2),
            f"{len(infer_plan) * doses} jobs at the groups/s measured on {args.block}-pattern "
            "blocks",
        ),
        "compare": phase(
            compare * doses,
            compare * doses,
            f"{scored * doses} scores, {(1 + len(design.views)) * doses} scored regions and "
            "reconstruction grids",
        ),
    }
    total = sum(p["seconds_1_thread"] for p in phases.values())
    for engine_runs in runs.values():
        for run in engine_runs.values():
            del run["reconstruction"]
    result = {
        "benchmark": "full_preset_cost",
        "preset": args.preset,
        "method": METHOD,
        "not_included": NOT_INCLUDED,
        "design": {
            "N": full.patch_size,
            "object_size": full.simulation.object_size,
            "step_px": full.simulation.scan.step_px,
            "doses": list(full.doses),
            "views": [BASELINE, *full.view_names()],
            "training": full.training.model_dump(mode="json"),
            "iterations": {e: full.iterative.options(e).iterations for e in full.iterative.engines},
        },
        "measured_dose": args.dose,
        "patterns_per_dose": patterns,
        "measured": {
            "simulate_one_dose": data["simulate"],
            "overlap_one_dose": data["overlap"],
            "training": train,
            "engines": runs,
            "inference": infer,
            "scoring": scores,
        },
        "jobs_per_dose": {"train": train_jobs, "iterative": engine_plan, "infer": infer_plan},
        "phases": phases,
        "total": {
            "seconds_1_thread": round(total, 1),
            "cpu_hours": round(total / 3600, 2),
            "seconds_2_cores": round(sum(p["seconds_2_cores"] for p in phases.values()), 1),
        },
        "load_average": {"start": load, "end": [round(v, 2) for v in os.getloadavg()]},
        "wall_seconds": round(time.perf_counter() - started, 1),
        **environment(),
        "torch_threads": THREADS,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
