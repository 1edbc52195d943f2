"""Phase E: the training matrix — one PtychoPINN job per dose and view.

* :func:`build_training_jobs` turns the phase C/D roots into :class:`TrainingJob` records
  (pure: it reads paths, creates nothing);
* :func:`run_training_job` prepares one job's folder and log and either previews it (dry run)
  or hands the fully resolved configuration to a runner — by default the Lightning trainer;
* :func:`run_training_matrix` runs every job, never letting one failure stop the others, and
  writes ``training_manifest.json`` and ``skip_summary.json``.

Also runnable as ``python -m ptypinn.study.training`` (same options as ``ptypinn train-matrix``).
"""

from __future__ import annotations

import shlex
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from ptypinn.io.artifacts import sha256_file, write_json
from ptypinn.io.dataset import load_dataset
from ptypinn.study.design import StudyDesign, TrainingConfig
from ptypinn.study.layout import TRAINING_MANIFEST, dose_label
from ptypinn.study.matrix import BASELINE, DEFAULT_VIEWS, SkipEvent, collect_datasets, select, view_gridsize
from ptypinn.io.progress import progress_bar
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.pinn.train import BUNDLE_NAME, JobSpec, train_model

SKIP_SUMMARY = "skip_summary.json"
LOG_NAME = "train.log"

Runner = Callable[[dict], dict]


@dataclass(frozen=True)
class TrainingJob:
    """One cell of the matrix: which data trains which model, and where its files go."""

    dose: float
    view: str
    gridsize: int
    train_path: Path
    test_path: Path
    artifact_dir: Path
    log_path: Path

    def __post_init__(self) -> None:
        expected = view_gridsize(self.view)
        if self.gridsize != expected:
            kind = "the baseline" if self.view == BASELINE else f"overlap view {self.view!r}"
            raise ValueError(f"{kind} trains at gridsize {expected}, not {self.gridsize}")


def build_training_jobs(
    phase_c_root: str | Path,
    phase_d_root: str | Path,
    artifact_root: str | Path,
    views: Sequence[str] = DEFAULT_VIEWS,
    allow_missing_phase_d: bool = False,
) -> tuple[list[TrainingJob], list[SkipEvent]]:
    """Every training job of the matrix, and the views skipped because their data is missing."""
    entries, skips = collect_datasets(phase_c_root, phase_d_root, views, allow_missing_phase_d)
    jobs = []
    for entry in entries:
        folder = Path(artifact_root) / dose_label(entry.dose) / entry.view / f"gs{entry.gridsize}"
        jobs.append(TrainingJob(entry.dose, entry.view, entry.gridsize, entry.train, entry.test, folder, folder / LOG_NAME))
    return jobs, skips


def resolve_config(job: TrainingJob, design: StudyDesign, options: TrainerOptions) -> dict:
    """Everything the runner needs, as plain JSON values: the job, the dose as nphotons, training and trainer settings."""
    return {
        "dose": job.dose,
        "nphotons": job.dose,
        "view": job.view,
        "gridsize": job.gridsize,
        "train_path": str(job.train_path),
        "test_path": str(job.test_path),
        "artifact_dir": str(job.artifact_dir),
        "log_path": str(job.log_path),
        "neighbor_count": design.neighbor_count,
        "grouping_seed": design.seeds.grouping,
        "training": design.training.model_dump(mode="json"),
        "trainer": asdict(options),
    }


def command_for(config: dict, design_args: Sequence[str]) -> str:
    """The ``ptypinn train`` command line equivalent to one resolved job."""
    trainer = config["trainer"]
    words = [
        "ptypinn", "train", "--train", config["train_path"], "--output", config["artifact_dir"],
        "--gridsize", str(config["gridsize"]), "--nphotons", f"{config['nphotons']:g}", *design_args,
        "--accelerator", trainer["accelerator"], "--devices", str(trainer["devices"]), "--strategy", trainer["strategy"],
        "--num-nodes", str(trainer["num_nodes"]), "--deterministic" if trainer["deterministic"] else "--no-deterministic",
        "--num-workers", str(trainer["num_workers"]), "--logger", trainer["logger"],
        "--max-epochs", str(config["training"]["epochs"]),
    ]
    return shlex.join(words)


def lightning_runner(config: dict) -> dict:
    """The real runner: train with Lightning and report the bundle."""
    spec = JobSpec(
        train_path=Path(config["train_path"]), gridsize=config["gridsize"], neighbor_count=config["neighbor_count"],
        grouping_seed=config["grouping_seed"], training=TrainingConfig.model_validate(config["training"]), nphotons=config["nphotons"],
    )
    result = train_model(spec, load_dataset(spec.train_path), config["artifact_dir"], TrainerOptions(**config["trainer"]))
    return {"bundle": str(result.bundle), "final_loss": result.final_loss, "epochs": result.epochs, "wall_time_s": result.wall_time_s}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_training_job(
    job: TrainingJob, config: dict, runner: Runner = lightning_runner, dry_run: bool = False, command: str = ""
) -> dict:
    """Prepare the job's folder and log, then preview (dry run) or run it; failures are returned, not raised."""
    job.artifact_dir.mkdir(parents=True, exist_ok=True)
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "dose": job.dose, "view": job.view, "gridsize": job.gridsize, "train_path": str(job.train_path),
        "test_path": str(job.test_path), "artifact_dir": str(job.artifact_dir), "log_path": str(job.log_path),
        "command": command, "status": "dry-run", "final_loss": None, "epochs": None,
        "bundle": None, "bundle_sha256": None, "bundle_bytes": None, "error": None,
    }
    with job.log_path.open("w", encoding="utf-8") as log:
        log.write(f"# ptypinn training job {dose_label(job.dose)}/{job.view}/gs{job.gridsize}\n# started {_now()}\n# command: {command}\n")
        if dry_run:
            log.write("# dry run: nothing trained\n")
            return {**entry, "config": config}
        try:
            outcome = runner(config)
        except Exception as error:  # a failed job is recorded and the matrix goes on
            log.write(traceback.format_exc())
            return {**entry, "status": "failed", "error": f"{type(error).__name__}: {error}"}
        bundle = Path(outcome["bundle"])
        log.write(f"# finished {_now()}: final loss {outcome['final_loss']:.6g} after {outcome['epochs']} epochs\n")
    return {
        **entry, "status": "ok", "final_loss": float(outcome["final_loss"]), "epochs": int(outcome["epochs"]),
        "wall_time_s": outcome.get("wall_time_s"),
        "bundle": bundle.relative_to(job.artifact_dir).as_posix(), "bundle_sha256": sha256_file(bundle), "bundle_bytes": bundle.stat().st_size,
    }


def run_training_matrix(
    design: StudyDesign,
    phase_c_root: str | Path,
    phase_d_root: str | Path,
    artifact_root: str | Path,
    *,
    doses: Sequence[float] | None = None,
    views: Sequence[str] | None = None,
    gridsizes: Sequence[int] | None = None,
    allow_missing_phase_d: bool = False,
    dry_run: bool = False,
    options: TrainerOptions = TrainerOptions(),
    runner: Runner = lightning_runner,
    design_args: Sequence[str] = (),
    executor: Executor | None = None,
) -> dict:
    """Run (or preview) the filtered matrix and write the manifest and skip summary.

    With an ``executor`` (any ``concurrent.futures.Executor``, e.g. a Dask client's), the jobs
    are submitted to it all at once and their results collected in matrix order.
    """
    artifact_root = Path(artifact_root)
    design_views = [view.name for view in design.views]
    jobs, skips = build_training_jobs(phase_c_root, phase_d_root, artifact_root, design_views, allow_missing_phase_d)
    chosen = select(jobs, doses, views, gridsizes)
    configs = [resolve_config(job, design, options) for job in chosen]
    arguments = [(job, config, runner, dry_run, command_for(config, design_args)) for job, config in zip(chosen, configs)]
    results = []
    with progress_bar("training jobs", len(chosen)) as advance:
        if executor is None:
            for args in arguments:
                results.append(run_training_job(*args))
                advance(1)
        else:
            futures = [executor.submit(run_training_job, *args) for args in arguments]
            for future in futures:
                results.append(future.result())
                advance(1)
    skipped = [event.to_dict() for event in skips]
    manifest = {
        "phase": "E",
        "timestamp": _now(),
        "phase_c_root": str(phase_c_root),
        "phase_d_root": str(phase_d_root),
        "artifact_root": str(artifact_root),
        "design": design.name,
        "filters": {"dose": list(doses or []), "view": list(views or []), "gridsize": list(gridsizes or [])},
        "dry_run": dry_run,
        "enumerated_count": len(jobs),
        "job_count": len(chosen),
        "jobs": results,
        "failed_count": sum(r["status"] == "failed" for r in results),
        "skipped_views": skipped,
        "skipped_count": len(skipped),
    }
    write_json(artifact_root / TRAINING_MANIFEST, manifest)
    write_json(artifact_root / SKIP_SUMMARY, {"timestamp": manifest["timestamp"], "skipped_views": skipped, "skipped_count": len(skipped)})
    return manifest


if __name__ == "__main__":
    from ptypinn.cli import run_single_command

    run_single_command("train-matrix")
