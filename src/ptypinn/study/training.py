"""Phase E: the training matrix — one PtychoPINN job per dose and view.

* :func:`build_training_jobs` turns the phase C/D manifests into :class:`TrainingJob` records
  (pure: it reads manifests and checks file hashes, creates nothing);
* :func:`run_training_job` clears the job's folder of an earlier run's bundle, logs and
  checkpoints (a link is removed, never followed), writes ``train.log`` and hands the fully
  resolved configuration to a runner — by default the Lightning trainer;
* :func:`run_training_matrix` runs the selected jobs, never letting one failure stop the others,
  and writes ``training_manifest.json`` after every job, and ``skip_summary.json``.

Records are never lost to a later run: the manifest keeps the finished jobs a filter leaves out
(as long as their training data, settings and bundle still match the record); with ``resume``
such a job is not trained again either; a dry run writes its preview to
``training_preview.json`` beside the manifest and touches nothing else. A filter that selects
no job is an error. Job folders must stay inside the artifact root (no symbolic link out).

The design decides the jobs: one per dataset, gridsize (:func:`training_gridsizes`) and method
(``design.methods``: the physics-loss PINN and/or the supervised baseline). The command line is
``ptypinn train-matrix`` (also ``python -m ptypinn train-matrix``).
"""

from __future__ import annotations

import shlex
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from ptypinn.io.artifacts import clear_outputs, ensure_inside, write_json
from ptypinn.io.dataset import load_dataset
from ptypinn.pinn.config import Method, TrainingConfig
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.pinn.train import JOB_OUTPUTS, JobSpec, train_model
from ptypinn.study.design import DesignError, StudyDesign
from ptypinn.study.jobs import content_key, run_matrix
from ptypinn.study.layout import (
    SKIP_SUMMARY,
    TRAINING_MANIFEST,
    TRAINING_PREVIEW,
    training_folder,
)
from ptypinn.study.matrix import collect_datasets, select, training_gridsizes
from ptypinn.study.records import (
    FileRecord,
    SkipRecord,
    Status,
    TrainingManifest,
    TrainingRecord,
    cell_label,
    earlier_jobs,
    write_manifest,
)

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
    train_sha256: str = ""

    @property
    def cell(self) -> str:
        return cell_label(self.dose, self.view, self.gridsize, self.method)


@dataclass(frozen=True)
class JobConfig:
    """Everything a runner needs to train one job, fully resolved from the design."""

    job: TrainingJob
    neighbor_count: int
    grouping_seed: int
    training: TrainingConfig
    trainer: TrainerOptions
    command: str = ""

    @property
    def label(self) -> str:
        return self.job.cell

    @property
    def files_root(self) -> Path:
        """A record's bundle is relative to the job's folder."""
        return self.job.artifact_dir

    def spec(self) -> JobSpec:
        return JobSpec(
            self.job.train_path,
            self.job.gridsize,
            self.neighbor_count,
            self.grouping_seed,
            self.training,
        )

    @property
    def key(self) -> str:
        """SHA-256 of the science of the job (not where or on what hardware it runs): a finished
        job with the same key needs no retraining."""
        science = {
            "dose": self.job.dose,
            "view": self.job.view,
            "gridsize": self.job.gridsize,
            "method": self.job.method,
            "neighbor_count": self.neighbor_count,
            "grouping_seed": self.grouping_seed,
            "training": self.training.model_dump(mode="json"),
            "train_sha256": self.job.train_sha256,
        }
        return content_key(science)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON values (the dry-run preview)."""
        return {
            **{
                key: str(value) if isinstance(value, Path) else value
                for key, value in asdict(self.job).items()
            },
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


Runner = Callable[[JobConfig], JobOutcome]


def build_training_jobs(
    phase_c_root: str | Path,
    phase_d_root: str | Path,
    artifact_root: str | Path,
    views: Sequence[str],
    allow_missing_phase_d: bool = False,
    gridsizes: Sequence[int] = (1, 2),
    methods: Sequence[Method] = ("pinn",),
) -> tuple[list[TrainingJob], list[SkipRecord]]:
    """Every training job of the matrix, and the views skipped because their data is missing.

    Each dataset trains one model per gridsize (:func:`training_gridsizes`) and method.
    """
    entries, skips = collect_datasets(phase_c_root, phase_d_root, views, allow_missing_phase_d)
    jobs = []
    for entry in entries:
        for gridsize in training_gridsizes(entry.view, gridsizes):
            for method in methods:
                folder = training_folder(artifact_root, entry.dose, entry.view, gridsize, method)
                jobs.append(
                    TrainingJob(
                        entry.dose,
                        entry.view,
                        gridsize,
                        method,
                        entry.train,
                        entry.test,
                        folder,
                        folder / LOG_NAME,
                        entry.train_sha256,
                    )
                )
    return jobs, skips


def job_spec(
    design: StudyDesign,
    train_path: str | Path,
    gridsize: int,
    training: Mapping[str, object] | None = None,
    nphotons: float | None = None,
) -> JobSpec:
    """The training job ``design`` asks for on ``train_path`` at ``gridsize``: its grouping and its
    training settings, with ``training``'s changes (validated); the one place a
    :class:`~ptypinn.pinn.train.JobSpec` is built from a design."""
    settings = design.training.model_validate({**design.training.model_dump(), **(training or {})})
    return JobSpec(
        Path(train_path), gridsize, design.neighbor_count, design.seeds.grouping, settings, nphotons
    )


def resolve_config(
    job: TrainingJob, design: StudyDesign, options: TrainerOptions, design_args: Sequence[str] = ()
) -> JobConfig:
    """The job with the design's grouping and training settings (the job's method decides the
    loss) and its equivalent command line."""
    spec = job_spec(design, job.train_path, job.gridsize, {"model": job.method})
    config = JobConfig(job, spec.neighbor_count, spec.grouping_seed, spec.training, options)
    return replace(config, command=command_for(config, design_args))


def command_for(config: JobConfig, design_args: Sequence[str]) -> str:
    """The ``ptypinn train`` command line equivalent to one resolved job."""
    trainer = config.trainer
    words = [
        "ptypinn",
        "train",
        "--train",
        str(config.job.train_path),
        "--output",
        str(config.job.artifact_dir),
        "--gridsize",
        str(config.job.gridsize),
        *(["--supervised"] if config.job.method == "supervised" else []),
        *design_args,
        "--accelerator",
        trainer.accelerator,
        "--devices",
        str(trainer.devices),
        "--strategy",
        trainer.strategy,
        "--num-nodes",
        str(trainer.num_nodes),
        "--deterministic" if trainer.deterministic else "--no-deterministic",
        "--num-workers",
        str(trainer.num_workers),
        "--logger",
        trainer.logger,
        "--precision",
        trainer.precision,
        "--max-epochs",
        str(config.training.epochs),
    ]
    return shlex.join(words)


def lightning_runner(config: JobConfig) -> JobOutcome:
    """The real runner: train with Lightning and report the bundle."""
    spec = config.spec()
    result = train_model(
        spec, load_dataset(spec.train_path), config.job.artifact_dir, config.trainer
    )
    return JobOutcome(result.bundle, result.final_loss, result.epochs, result.wall_time_s)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _record(config: JobConfig, status: Status) -> TrainingRecord:
    job = config.job
    return TrainingRecord(
        dose=job.dose,
        view=job.view,
        gridsize=job.gridsize,
        method=job.method,
        train_path=str(job.train_path),
        train_sha256=job.train_sha256,
        test_path=str(job.test_path),
        artifact_dir=str(job.artifact_dir),
        log_path=str(job.log_path),
        command=config.command,
        key=config.key,
        status=status,
    )


def run_training_job(config: JobConfig, runner: Runner = lightning_runner) -> TrainingRecord:
    """Clear the job's folder of an earlier run, then run it; failures are returned, not raised."""
    job = config.job
    job.artifact_dir.mkdir(parents=True, exist_ok=True)
    clear_outputs(job.artifact_dir, (*JOB_OUTPUTS, LOG_NAME))
    record = _record(config, "failed")
    with job.log_path.open("x", encoding="utf-8") as log:  # "x": a new file, never through a link
        log.write(
            f"# ptypinn training job {job.cell}\n# started {_now()}\n# command: {config.command}\n"
        )
        log.flush()
        try:
            outcome = runner(config)
        except Exception as error:  # a failed job is recorded and the matrix goes on
            log.write(traceback.format_exc())
            return record.model_copy(update={"error": f"{type(error).__name__}: {error}"})
        bundle = Path(outcome.bundle)
        log.write(
            f"# finished {_now()}: final loss {outcome.final_loss:.6g} "
            f"after {outcome.epochs} epochs\n"
        )
    return record.model_copy(
        update={
            "status": "ok",
            "final_loss": float(outcome.final_loss),
            "epochs": int(outcome.epochs),
            "wall_time_s": outcome.wall_time_s,
            "files": {"bundle": FileRecord.of(bundle, job.artifact_dir)},
        }
    )


def _no_match(
    jobs: list[TrainingJob],
    doses: Sequence[float] | None,
    views: Sequence[str] | None,
    gridsizes: Sequence[int] | None,
) -> DesignError:
    given = ", ".join(
        f"--{name} {' '.join(f'{v:g}' if isinstance(v, float) else str(v) for v in values)}"
        for name, values in (("dose", doses), ("view", views), ("gridsize", gridsizes))
        if values
    )
    held = sorted({f"{job.dose:g}" for job in jobs}, key=float)
    return DesignError(
        f"no training job matches {given}; the matrix has doses {', '.join(held)}, "
        f"views {', '.join(dict.fromkeys(job.view for job in jobs))}, "
        f"gridsizes {sorted({job.gridsize for job in jobs})}"
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
    resume: bool = False,
    options: TrainerOptions | None = None,
    runner: Runner = lightning_runner,
    design_args: Sequence[str] = (),
    executor: Executor | None = None,
) -> TrainingManifest:
    """Run (or preview) the filtered matrix and write the manifest and skip summary.

    Jobs run through :func:`ptypinn.study.jobs.run_matrix`, one at a time (training uses every
    thread); with ``resume``, a selected job whose earlier record still matches is kept instead
    of trained again. With an ``executor`` (any ``concurrent.futures.Executor``, e.g. a Dask
    client's), the jobs are submitted to it all at once.
    """
    options = options or TrainerOptions()
    artifact_root = Path(artifact_root)
    jobs, skips = build_training_jobs(
        phase_c_root,
        phase_d_root,
        artifact_root,
        design.view_names(),
        allow_missing_phase_d,
        design.gridsizes,
        design.methods,
    )
    chosen = {
        job.cell for job in select(jobs, doses, views) if not gridsizes or job.gridsize in gridsizes
    }
    if not chosen:
        raise _no_match(jobs, doses, views, gridsizes)
    plan = [resolve_config(job, design, options, design_args) for job in jobs]
    manifest = TrainingManifest(
        timestamp=_now(),
        phase_c_root=str(phase_c_root),
        phase_d_root=str(phase_d_root),
        artifact_root=str(artifact_root),
        design=design.name,
        filters={
            "dose": list(doses or []),
            "view": list(views or []),
            "gridsize": list(gridsizes or []),
        },
        dry_run=dry_run,
        enumerated_count=len(jobs),
        job_count=len(chosen),
        skipped_views=skips,
        skipped_count=len(skips),
    )
    if dry_run:
        manifest.jobs = [
            _record(config, "dry-run").model_copy(update={"config": config.to_dict()})
            for config in plan
            if config.label in chosen
        ]
        write_manifest(artifact_root / TRAINING_PREVIEW, manifest)
        return manifest
    for job in jobs:
        if job.cell in chosen:
            ensure_inside(artifact_root, job.artifact_dir)

    def save(records: list[TrainingRecord]) -> None:
        manifest.jobs = records
        manifest.failed_count = sum(record.status == "failed" for record in records)
        write_manifest(artifact_root / TRAINING_MANIFEST, manifest)

    run_matrix(
        plan,
        partial(run_training_job, runner=runner),
        earlier_jobs(TrainingManifest, artifact_root / TRAINING_MANIFEST),
        resume,
        chosen=chosen,
        save=save,
        executor=executor,
        description="training jobs",
    )
    write_json(
        artifact_root / SKIP_SUMMARY,
        {
            "timestamp": manifest.timestamp,
            "skipped_views": [skip.model_dump() for skip in skips],
            "skipped_count": len(skips),
        },
    )
    return manifest
