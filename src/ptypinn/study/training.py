"""Phase E: the training matrix — one PtychoPINN job per dose and view.

* :func:`build_training_jobs` turns the phase C/D roots into :class:`TrainingJob` records
  (pure: it reads paths, creates nothing);
* :func:`run_training_job` prepares one job's folder and log and either previews it (dry run)
  or hands the fully resolved configuration to a runner — by default the Lightning trainer;
* :func:`run_training_matrix` runs every job, never letting one failure stop the others, and
  writes ``training_manifest.json`` and ``skip_summary.json``.

The command line is ``ptypinn train-matrix`` (also ``python -m ptypinn train-matrix``).
"""

from __future__ import annotations

import shlex
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from ptypinn.io.artifacts import sha256_file, write_json
from ptypinn.io.dataset import load_dataset
from ptypinn.pinn.config import Method, TrainingConfig
from ptypinn.study.design import StudyDesign
from ptypinn.study.layout import TRAINING_MANIFEST, dose_label, model_folder
from ptypinn.study.matrix import DEFAULT_VIEWS, SkipEvent, collect_datasets, select, training_gridsizes
from ptypinn.io.progress import progress_bar
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.pinn.train import BUNDLE_NAME, JobSpec, train_model

SKIP_SUMMARY = "skip_summary.json"
LOG_NAME = "train.log"

@dataclass(frozen=True)
class TrainingJob:
    """One cell of the matrix: which data trains which model, and where its files go."""

    dose: float
    view: str
    gridsize: int
    method: Method
    train_path: Path
    test_path: Path
    artifact_dir: Path
    log_path: Path

    @property
    def label(self) -> str:
        return f"{dose_label(self.dose)}/{self.view}/{model_folder(self.method, self.gridsize)}"


@dataclass(frozen=True)
class JobConfig:
    """Everything a runner needs to train one job, fully resolved from the design."""

    job: TrainingJob
    neighbor_count: int
    grouping_seed: int
    training: TrainingConfig
    trainer: TrainerOptions

    def spec(self) -> JobSpec:
        return JobSpec(self.job.train_path, self.job.gridsize, self.neighbor_count, self.grouping_seed, self.training)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON values (the dry-run preview)."""
        return {
            **{key: str(value) if isinstance(value, Path) else value for key, value in asdict(self.job).items()},
            "neighbor_count": self.neighbor_count,
            "grouping_seed": self.grouping_seed,
            "training": self.training.model_dump(mode="json"),
            "trainer": asdict(self.trainer),
        }


@dataclass(frozen=True)
class JobOutcome:
    """What a runner reports for a finished job."""

    bundle: Path
    final_loss: float
    epochs: int
    wall_time_s: float | None = None


@dataclass(frozen=True)
class JobRecord:
    """One job's entry in ``training_manifest.json``."""

    dose: float
    view: str
    gridsize: int
    method: str
    train_path: str
    test_path: str
    artifact_dir: str
    log_path: str
    command: str
    status: Literal["ok", "failed", "dry-run"]
    final_loss: float | None = None
    epochs: int | None = None
    wall_time_s: float | None = None
    bundle: str | None = None
    bundle_sha256: str | None = None
    bundle_bytes: int | None = None
    error: str | None = None
    config: dict | None = None

    @classmethod
    def from_dict(cls, values: dict) -> JobRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})

    def to_dict(self) -> dict[str, object]:
        entry = asdict(self)
        if self.config is None:
            del entry["config"]
        return entry


Runner = Callable[[JobConfig], JobOutcome]


def build_training_jobs(
    phase_c_root: str | Path,
    phase_d_root: str | Path,
    artifact_root: str | Path,
    views: Sequence[str] = DEFAULT_VIEWS,
    allow_missing_phase_d: bool = False,
    gridsizes: Sequence[int] = (1, 2),
    methods: Sequence[Method] = ("pinn",),
) -> tuple[list[TrainingJob], list[SkipEvent]]:
    """Every training job of the matrix, and the views skipped because their data is missing.

    Each dataset trains one model per gridsize (:func:`training_gridsizes`) and method.
    """
    entries, skips = collect_datasets(phase_c_root, phase_d_root, views, allow_missing_phase_d)
    jobs = []
    for entry in entries:
        for gridsize in training_gridsizes(entry.view, gridsizes):
            for method in methods:
                folder = Path(artifact_root) / dose_label(entry.dose) / entry.view / model_folder(method, gridsize)
                jobs.append(TrainingJob(entry.dose, entry.view, gridsize, method, entry.train, entry.test,
                                        folder, folder / LOG_NAME))
    return jobs, skips


def resolve_config(job: TrainingJob, design: StudyDesign, options: TrainerOptions) -> JobConfig:
    """The job with the design's grouping and training settings (the job's method decides the loss)."""
    training = design.training.model_copy(update={"model": job.method})
    return JobConfig(job, design.neighbor_count, design.seeds.grouping, training, options)


def command_for(config: JobConfig, design_args: Sequence[str]) -> str:
    """The ``ptypinn train`` command line equivalent to one resolved job."""
    trainer = config.trainer
    words = [
        "ptypinn", "train", "--train", str(config.job.train_path), "--output", str(config.job.artifact_dir),
        "--gridsize", str(config.job.gridsize), *(["--supervised"] if config.job.method == "supervised" else []),
        *design_args,
        "--accelerator", trainer.accelerator, "--devices", str(trainer.devices), "--strategy", trainer.strategy,
        "--num-nodes", str(trainer.num_nodes), "--deterministic" if trainer.deterministic else "--no-deterministic",
        "--num-workers", str(trainer.num_workers), "--logger", trainer.logger, "--precision", trainer.precision,
        "--max-epochs", str(config.training.epochs),
    ]
    return shlex.join(words)


def lightning_runner(config: JobConfig) -> JobOutcome:
    """The real runner: train with Lightning and report the bundle."""
    spec = config.spec()
    result = train_model(spec, load_dataset(spec.train_path), config.job.artifact_dir, config.trainer)
    return JobOutcome(result.bundle, result.final_loss, result.epochs, result.wall_time_s)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_training_job(
    config: JobConfig, runner: Runner = lightning_runner, dry_run: bool = False, command: str = ""
) -> JobRecord:
    """Prepare the job's folder and log, then preview (dry run) or run it; failures are returned, not raised."""
    job = config.job
    job.artifact_dir.mkdir(parents=True, exist_ok=True)
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    record = JobRecord(
        dose=job.dose, view=job.view, gridsize=job.gridsize, method=job.method, train_path=str(job.train_path),
        test_path=str(job.test_path), artifact_dir=str(job.artifact_dir), log_path=str(job.log_path),
        command=command, status="dry-run",
    )
    with job.log_path.open("w", encoding="utf-8") as log:
        log.write(f"# ptypinn training job {job.label}\n# started {_now()}\n# command: {command}\n")
        if dry_run:
            log.write("# dry run: nothing trained\n")
            return replace(record, config=config.to_dict())
        try:
            outcome = runner(config)
        except Exception as error:  # a failed job is recorded and the matrix goes on
            log.write(traceback.format_exc())
            return replace(record, status="failed", error=f"{type(error).__name__}: {error}")
        bundle = Path(outcome.bundle)
        log.write(f"# finished {_now()}: final loss {outcome.final_loss:.6g} after {outcome.epochs} epochs\n")
    return replace(
        record, status="ok", final_loss=float(outcome.final_loss), epochs=int(outcome.epochs),
        wall_time_s=outcome.wall_time_s, bundle=bundle.relative_to(job.artifact_dir).as_posix(),
        bundle_sha256=sha256_file(bundle), bundle_bytes=bundle.stat().st_size,
    )


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
    jobs, skips = build_training_jobs(phase_c_root, phase_d_root, artifact_root, design_views, allow_missing_phase_d,
                                      design.gridsizes, design.methods)
    chosen = [job for job in select(jobs, doses, views) if not gridsizes or job.gridsize in gridsizes]
    configs = [resolve_config(job, design, options) for job in chosen]
    arguments = [(config, runner, dry_run, command_for(config, design_args)) for config in configs]
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
        "jobs": [record.to_dict() for record in results],
        "failed_count": sum(record.status == "failed" for record in results),
        "skipped_views": skipped,
        "skipped_count": len(skipped),
    }
    write_json(artifact_root / TRAINING_MANIFEST, manifest)
    write_json(artifact_root / SKIP_SUMMARY, {"timestamp": manifest["timestamp"], "skipped_views": skipped, "skipped_count": len(skipped)})
    return manifest
