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

Also runnable as ``python -m ptypinn.study.training`` (same options as ``ptypinn train-matrix``).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from ptypinn.io.artifacts import clear_outputs, ensure_inside, sha256_file, write_json
from ptypinn.io.dataset import load_dataset
from ptypinn.study.design import DesignError, StudyDesign, TrainingConfig
from ptypinn.study.layout import TRAINING_MANIFEST, dose_label, training_folder
from ptypinn.study.matrix import BASELINE, DEFAULT_VIEWS, SkipEvent, collect_datasets, select, view_gridsize
from ptypinn.io.progress import progress_bar
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.pinn.train import JOB_OUTPUTS, JobSpec, train_model

SKIP_SUMMARY = "skip_summary.json"
TRAINING_PREVIEW = "training_preview.json"
LOG_NAME = "train.log"
# What makes two jobs the same science: a finished job with the same values needs no retraining.
JOB_KEY_FIELDS = (
    "dose", "view", "gridsize", "nphotons", "neighbor_count", "grouping_seed", "training",
    "train_sha256",
)

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
    train_sha256: str = ""

    @property
    def cell(self) -> str:
        return f"{dose_label(self.dose)}/{self.view}/gs{self.gridsize}"

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
        folder = training_folder(artifact_root, entry.dose, entry.view, entry.gridsize)
        jobs.append(TrainingJob(entry.dose, entry.view, entry.gridsize, entry.train, entry.test,
                                folder, folder / LOG_NAME, entry.train_sha256))
    return jobs, skips


def resolve_config(job: TrainingJob, design: StudyDesign, options: TrainerOptions) -> dict:
    """Everything the runner needs, as plain JSON values: the job, the dose as nphotons, training and trainer settings."""
    return {
        "dose": job.dose,
        "nphotons": job.dose,
        "view": job.view,
        "gridsize": job.gridsize,
        "train_path": str(job.train_path),
        "train_sha256": job.train_sha256,
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


def job_key(config: dict) -> str:
    """SHA-256 of the science of a resolved job (not where or on what hardware it runs)."""
    return hashlib.sha256(
        json.dumps({field: config[field] for field in JOB_KEY_FIELDS}, sort_keys=True).encode()
    ).hexdigest()


def _record(job: TrainingJob, config: dict, command: str, status: str) -> dict:
    return {
        "dose": job.dose,
        "view": job.view,
        "gridsize": job.gridsize,
        "train_path": str(job.train_path),
        "train_sha256": job.train_sha256,
        "test_path": str(job.test_path),
        "artifact_dir": str(job.artifact_dir),
        "log_path": str(job.log_path),
        "command": command,
        "key": job_key(config),
        "status": status,
        "reused": False,
        "final_loss": None,
        "epochs": None,
        "bundle": None,
        "bundle_sha256": None,
        "bundle_bytes": None,
        "error": None,
    }


def run_training_job(
    job: TrainingJob, config: dict, runner: Runner = lightning_runner, command: str = ""
) -> dict:
    """Clear the job's folder of an earlier run, then run it; failures are returned, not raised."""
    job.artifact_dir.mkdir(parents=True, exist_ok=True)
    clear_outputs(job.artifact_dir, (*JOB_OUTPUTS, LOG_NAME))
    entry = _record(job, config, command, "failed")
    with job.log_path.open("x", encoding="utf-8") as log:  # "x": a new file, never through a link
        log.write(f"# ptypinn training job {job.cell}\n# started {_now()}\n# command: {command}\n")
        log.flush()
        try:
            outcome = runner(config)
        except Exception as error:  # a failed job is recorded and the matrix goes on
            log.write(traceback.format_exc())
            return {**entry, "error": f"{type(error).__name__}: {error}"}
        bundle = Path(outcome["bundle"])
        log.write(f"# finished {_now()}: final loss {outcome['final_loss']:.6g} after {outcome['epochs']} epochs\n")
    return {
        **entry, "status": "ok", "final_loss": float(outcome["final_loss"]), "epochs": int(outcome["epochs"]),
        "wall_time_s": outcome.get("wall_time_s"),
        "bundle": bundle.relative_to(job.artifact_dir).as_posix(), "bundle_sha256": sha256_file(bundle), "bundle_bytes": bundle.stat().st_size,
    }


def _previous_records(path: Path) -> dict[str, dict]:
    """Finished job records of an earlier manifest, by matrix cell (none if it cannot be read)."""
    try:
        jobs = json.loads(path.read_text(encoding="utf-8"))["jobs"]
        return {
            f"{dose_label(job['dose'])}/{job['view']}/gs{job['gridsize']}": job
            for job in jobs
            if job["status"] == "ok"
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _still_valid(record: dict | None, job: TrainingJob, config: dict) -> bool:
    """Whether an earlier record still describes this job: same science, same bundle bytes."""
    if record is None or record.get("key") != job_key(config) or not record.get("bundle"):
        return False
    bundle = job.artifact_dir / record["bundle"]
    return (
        bundle.is_file()
        and not bundle.is_symlink()
        and sha256_file(bundle) == record.get("bundle_sha256")
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
    options: TrainerOptions = TrainerOptions(),
    runner: Runner = lightning_runner,
    design_args: Sequence[str] = (),
    executor: Executor | None = None,
) -> dict:
    """Run (or preview) the filtered matrix and write the manifest and skip summary.

    With ``resume``, a selected job whose earlier record still matches (:func:`_still_valid`) is
    kept instead of trained again. With an ``executor`` (any ``concurrent.futures.Executor``,
    e.g. a Dask client's), the jobs are submitted to it all at once and their results collected
    in matrix order.
    """
    artifact_root = Path(artifact_root)
    design_views = [view.name for view in design.views]
    jobs, skips = build_training_jobs(phase_c_root, phase_d_root, artifact_root, design_views, allow_missing_phase_d)
    chosen = {job.cell for job in select(jobs, doses, views, gridsizes)}
    if not chosen:
        raise _no_match(jobs, doses, views, gridsizes)
    configs = {job.cell: resolve_config(job, design, options) for job in jobs}
    commands = {cell: command_for(config, design_args) for cell, config in configs.items()}
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
        "jobs": [],
        "failed_count": 0,
        "skipped_views": skipped,
        "skipped_count": len(skipped),
    }
    if dry_run:
        manifest["jobs"] = [
            {
                **_record(job, configs[job.cell], commands[job.cell], "dry-run"),
                "config": configs[job.cell],
            }
            for job in jobs
            if job.cell in chosen
        ]
        write_json(artifact_root / TRAINING_PREVIEW, manifest)
        return manifest
    for job in jobs:
        if job.cell in chosen:
            ensure_inside(artifact_root, job.artifact_dir)
    previous = _previous_records(artifact_root / TRAINING_MANIFEST)
    records = {
        job.cell: {**previous[job.cell], "reused": True}
        for job in jobs
        if (job.cell not in chosen or resume)
        and _still_valid(previous.get(job.cell), job, configs[job.cell])
    }
    pending = [job for job in jobs if job.cell in chosen and job.cell not in records]

    def save() -> None:
        manifest["jobs"] = [records[job.cell] for job in jobs if job.cell in records]
        manifest["failed_count"] = sum(record["status"] == "failed" for record in manifest["jobs"])
        write_json(artifact_root / TRAINING_MANIFEST, manifest)

    save()
    arguments = [(job, configs[job.cell], runner, commands[job.cell]) for job in pending]
    with progress_bar("training jobs", len(pending)) as advance:
        if executor is None:
            results = (run_training_job(*args) for args in arguments)
        else:
            futures = [executor.submit(run_training_job, *args) for args in arguments]
            results = (future.result() for future in futures)
        for job, record in zip(pending, results):
            records[job.cell] = record
            save()  # after every job, so an interrupted run keeps what it finished
            advance(1)
    write_json(artifact_root / SKIP_SUMMARY, {"timestamp": manifest["timestamp"], "skipped_views": skipped, "skipped_count": len(skipped)})
    return manifest


if __name__ == "__main__":
    from ptypinn.cli import run_single_command

    run_single_command("train-matrix")
