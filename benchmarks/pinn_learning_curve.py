"""PtychoPINN learning curve: test quality against samples seen, with the iterative engine
as reference.

Simulates the smoke geometry at one dose (optionally with another base scan step), then for each
gridsize trains one run for the largest budget and, at every milestone (samples seen), reconstructs
the test split (the unseen upper half of the object) and the training split and scores both.
With the default constant learning rate, a milestone inside the run is what a run with that
budget would give; with ``--schedule cosine`` only the last milestone is. CDTools reconstructs
the same test split once, as the reference line. Before training, each run scores its model's
input alone (``ptypinn.pinn.model.input_alone``: the retrieval the generator is given, stitched
without the network) on both splits, so each point's ``gain`` is what the network adds; a model
with unrolled steps also scores untrained (``runs[].untrained``: its input and the steps' physics,
with every learned correction at the identity), so the learned part of the gain is visible too.

Usage:
  python benchmarks/pinn_learning_curve.py --milestones 1e4,3e4,1e5 --gridsizes 1,2 --view dense \
      --json benchmarks/results/pinn_learning_curve.json \
      --png benchmarks/results/pinn_learning_curve.png
Prints (and writes) one JSON object: per gridsize, the input alone's scores (``runs[].input``) and
per milestone phase and amplitude SSIM and phase FRC50 on the test and training splits, the test
phase SSIM gained over the input, wall time and samples/s; the machine and thread count.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from report import emit, environment  # noqa: E402

from ptypinn.engines.api import CDToolsOptions  # noqa: E402
from ptypinn.engines.registry import iterative_reconstructor  # noqa: E402
from ptypinn.io.dataset import PtychoDataset, load_dataset  # noqa: E402
from ptypinn.io.reconstruction import ReconstructionInput  # noqa: E402
from ptypinn.pinn.config import CorpusConfig, TrainingConfig  # noqa: E402
from ptypinn.pinn.inference import PtychoPINNReconstructor  # noqa: E402
from ptypinn.pinn.model import input_alone  # noqa: E402
from ptypinn.pinn.runtime import TrainerOptions  # noqa: E402
from ptypinn.pinn.train import JobSpec, PtychoModule, train_model  # noqa: E402
from ptypinn.study.design import StudyDesign, preset  # noqa: E402

from view_data import test_scores, view_splits  # noqa: E402


def quality(
    model: torch.nn.Module, dataset: PtychoDataset, neighbor_count: int, seed: int
) -> dict[str, float | None]:
    grouping = {"neighbor_count": neighbor_count, "grouping_seed": seed}
    rec = PtychoPINNReconstructor(model, grouping).reconstruct(
        ReconstructionInput.from_dataset(dataset)
    )
    return {
        **test_scores(rec.obj, dataset),
        "inference_patterns_per_s": round(dataset.count / rec.wall_time_s, 1),
    }


class Milestones(L.Callback):
    """Score the model on both splits (on the test split alone when ``train`` is None) each time
    the samples seen pass a milestone; before training, its input alone and, with
    ``untrained``, an unrolled model's physics steps alone."""

    def __init__(
        self,
        milestones: list[int],
        test: PtychoDataset,
        train: PtychoDataset | None,
        neighbor_count: int,
        seed: int,
        untrained: bool = True,
    ):
        self.pending, self.test, self.train = sorted(milestones), test, train
        self.splits = {"test": test} | ({} if train is None else {"train": train})
        self.score_untrained = untrained
        self.neighbor_count, self.seed = neighbor_count, seed
        self.points: list[dict] = []
        self.input: dict | None = None
        self.untrained: dict | None = None
        self.grouping = (neighbor_count, seed)
        self.training_seconds = 0.0
        self.started = 0.0

    def on_train_start(self, trainer: L.Trainer, module: PtychoModule) -> None:
        alone = input_alone(module.model)
        if alone is not None:
            self.input = {
                split: quality(alone, data, self.neighbor_count, self.seed)
                for split, data in self.splits.items()
            }
            print(json.dumps({"input": self.input}), flush=True)
        if self.score_untrained and len(
            module.model.refiners
        ):  # the unrolled physics steps alone, nothing learned yet
            self.untrained = {"test": quality(module.model, self.test, *self.grouping)}
            module.model.train()
            print(json.dumps({"untrained": self.untrained}), flush=True)

    def on_train_batch_start(
        self, trainer: L.Trainer, module: PtychoModule, batch: object, batch_idx: int
    ) -> None:
        self.started = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        module: PtychoModule,
        outputs: object,
        batch: object,
        batch_idx: int,
    ) -> None:
        self.training_seconds += time.perf_counter() - self.started
        if self.pending and module.samples_seen >= self.pending[0]:
            self.evaluate(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module: PtychoModule) -> None:
        if (
            self.pending
        ):  # the budget ended a few samples short of the last milestone (partial batches)
            self.evaluate(trainer, module)

    def evaluate(self, trainer: L.Trainer, module: PtychoModule) -> None:
        self.pending.pop(0)
        model = module.model
        point = {
            "samples_seen": module.samples_seen,
            "steps": trainer.global_step,
            "training_seconds": round(self.training_seconds, 1),
            "samples_per_s": round(module.samples_seen / self.training_seconds, 1),
            **{
                split: quality(model, data, self.neighbor_count, self.seed)
                for split, data in self.splits.items()
            },
        }
        if self.input is not None:
            point["gain"] = point["test"]["phase_ssim"] - self.input["test"]["phase_ssim"]
        model.train()
        self.points.append(point)
        print(json.dumps(point), flush=True)


def cdtools_reference(test: PtychoDataset, iterations: int) -> dict[str, float | None]:
    engine = iterative_reconstructor("cdtools", CDToolsOptions(iterations=iterations))
    start = time.perf_counter()
    result = engine.reconstruct(ReconstructionInput.from_dataset(test))
    return {
        "iterations": iterations,
        "seconds": round(time.perf_counter() - start, 1),
        **test_scores(result.obj, test),
    }


def curve_training(
    training: TrainingConfig, samples: int, seed: int, **changes: object
) -> TrainingConfig:
    """``training`` as every learning-curve run trains: a budget of ``samples``, no validation
    split, no early stopping, seed ``seed``; ``changes`` laid over it."""
    fixed = {"samples": samples, "validation_fraction": 0.0, "early_stopping_patience": 0}
    values = training.model_dump() | fixed | {"seed": seed} | changes
    return TrainingConfig.model_validate(values)


def trained_run(
    design: StudyDesign,
    gridsize: int,
    train_path: Path,
    train: PtychoDataset,
    tracker: Milestones,
    work: Path,
    options: TrainerOptions,
) -> dict:
    """Train one gridsize of ``design`` (its training) on ``train``, scored by ``tracker``."""
    training = design.training
    spec = JobSpec(train_path, gridsize, design.neighbor_count, design.seeds.grouping, training)
    trained = train_model(spec, train, work / f"gs{gridsize}", options, callbacks=[tracker])
    return {
        "gridsize": gridsize,
        "final_loss": trained.final_loss,
        "input": tracker.input,
        "untrained": tracker.untrained,
        "points": tracker.points,
    }


def plot(result: dict, path: Path) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, split in zip(axes, ("test", "train"), strict=True):
        for run in result["runs"]:
            samples = [p["samples_seen"] for p in run["points"]]
            line = ax.plot(
                samples,
                [p[split]["phase_ssim"] for p in run["points"]],
                marker="o",
                label=f"PtychoPINN gs{run['gridsize']}",
            )[0]
            if run.get("input"):
                ax.axhline(
                    run["input"][split]["phase_ssim"],
                    color=line.get_color(),
                    linestyle=":",
                    label=f"gs{run['gridsize']} input alone (no network)",
                )
        if result.get("cdtools"):
            ax.axhline(
                result["cdtools"]["phase_ssim"],
                color="black",
                linestyle="--",
                label=f"CDTools, {result['cdtools']['iterations']} iterations (test split)",
            )
        ax.set_xscale("log")
        ax.set_xlabel("samples seen")
        half = "unseen upper half" if split == "test" else "the half it trained on"
        ax.set_title(f"{split} split ({half})")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("phase SSIM (illuminated region)")
    axes[0].legend(fontsize=8)
    figure.suptitle(
        f"PtychoPINN learning curve: {result['view']} view, dose {result['dose']:g}, "
        f"N = {result['N']}"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument(
        "--view", default="baseline", help="'baseline' (full scan) or an overlap view"
    )
    parser.add_argument("--dose", type=float, default=1e4)
    parser.add_argument(
        "--milestones", default="1e4,3e4,1e5", help="samples seen at which to score"
    )
    parser.add_argument("--gridsizes", default="1,2")
    parser.add_argument(
        "--generator", default=None, help="generator architecture (default: the preset's)"
    )
    parser.add_argument(
        "--inputs",
        default=None,
        help="generator inputs: amplitude, backprop, retrieval or group_retrieval (default: the "
        "preset's)",
    )
    parser.add_argument(
        "--retrieval-iterations",
        type=int,
        default=None,
        help="retrieval inputs: iterations per pattern or group (default: the preset's)",
    )
    parser.add_argument(
        "--correction",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="inputs retrieval: the generator corrects the retrieved object (default: the "
        "preset's, on with retrieval inputs)",
    )
    parser.add_argument(
        "--group-generator",
        default=None,
        help="gridsize >= 2: channels or shared (default: the preset's)",
    )
    parser.add_argument(
        "--corpus-objects",
        type=int,
        default=0,
        help="add a procedural training corpus of this many objects (0: none)",
    )
    parser.add_argument(
        "--schedule",
        default="constant",
        help="constant (every milestone is what that budget gives) or cosine (only the last is)",
    )
    parser.add_argument(
        "--unrolled-steps",
        type=int,
        default=None,
        help="physics updates with learned corrections after the generator (default: the "
        "preset's, none)",
    )
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--precision", default="32-true")
    parser.add_argument(
        "--step", type=float, default=None, help="base scan step, px (default: the preset's)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cdtools-iterations", type=int, default=100, help="0 skips the reference")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--png", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()

    design = preset("smoke")
    simulation = design.simulation
    if args.step is not None:
        simulation = simulation.model_copy(
            update={"scan": simulation.scan.model_copy(update={"step_px": args.step})}
        )
    milestones = [int(float(m)) for m in args.milestones.split(",")]
    changes: dict = {"schedule": args.schedule}
    if args.corpus_objects:
        changes["corpus"] = CorpusConfig(objects=args.corpus_objects)
    for key in (
        "generator",
        "inputs",
        "retrieval_iterations",
        "correction",
        "group_generator",
        "unrolled_steps",
        "width",
        "batch_size",
        "learning_rate",
    ):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    training = curve_training(design.training, max(milestones), args.seed, **changes)
    design = design.model_copy(
        update={"doses": (args.dose,), "simulation": simulation, "training": training}
    )

    work = args.work or Path(tempfile.mkdtemp(prefix="ptypinn-curve-"))
    train_path, test_path = view_splits(design, args.view, args.dose, work)
    train, test = load_dataset(train_path), load_dataset(test_path)
    options = TrainerOptions(
        logger="none", checkpoints=False, progress=False, precision=args.precision
    )
    started = time.perf_counter()
    result: dict = {
        "benchmark": "pinn_learning_curve",
        "view": args.view,
        "dose": args.dose,
        "N": design.patch_size,
        "base_step_px": design.simulation.scan.step_px,
        "train_patterns": train.count,
        "test_patterns": test.count,
        "training": training.model_dump(mode="json"),
        "precision": args.precision,
        "runs": [],
    }
    result["cdtools"] = (
        cdtools_reference(test, args.cdtools_iterations) if args.cdtools_iterations else None
    )
    print(json.dumps({"cdtools": result["cdtools"]}), flush=True)
    for gridsize in (int(g) for g in args.gridsizes.split(",")):
        tracker = Milestones(milestones, test, train, design.neighbor_count, design.seeds.grouping)
        result["runs"].append(
            trained_run(design, gridsize, train_path, train, tracker, work, options)
        )
    result.update(
        {
            "wall_seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            **environment(),
        }
    )
    emit(result, args.json)
    if args.png:
        plot(result, args.png)


if __name__ == "__main__":
    main()
