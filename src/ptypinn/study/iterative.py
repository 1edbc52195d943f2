"""Phase F job matrix: reconstruct every (dose, view, split) dataset with every iterative engine.

Jobs are the datasets of :func:`ptypinn.study.matrix.collect_datasets` (the baseline and every view
of the design, per dose) times the splits (train, test) times the design's engines
(``iterative.engines``); the dose/view/split/engine filters choose which run. Output layout::

    <artifact-root>/dose_<int>/<view>/<split>/<engine>/reconstruction.npz
    <artifact-root>/dose_<int>/<view>/<split>/<engine>/reconstruction.png
    <artifact-root>/reconstruction_manifest.json

A job that fails is recorded in the manifest (status ``failed`` with the error) and the matrix
goes on; a reconstruction with NaN or infinite values is such a failure. An engine that cannot
run here (its library is missing or cannot be imported) fails each of its jobs with that reason,
without stopping the other engines. A dry run plans the jobs and writes nothing. Jobs run through
:func:`ptypinn.study.jobs.run_matrix`: a job's key is the SHA-256 of its dose, view, split,
engine, options and input data, and an earlier record with the job's key and intact files is
kept (always for a job the filters leave out; with ``resume`` for the chosen ones too). A job
records its time-to-quality curve (``curve``: the object at the design's ``iterative.checkpoints``
scored after the run, :func:`ptypinn.study.scoring.quality_curve`). Each
engine runs on ``threads`` torch threads, so ``workers`` jobs (default: the CPU count over the
threads) run at once, each in its own process.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from ptypinn import __version__
from ptypinn.engines.api import EngineOptions, EngineUnavailable
from ptypinn.engines.registry import iterative_reconstructor
from ptypinn.io.artifacts import ensure_inside, sha256_file
from ptypinn.io.dataset import load_dataset
from ptypinn.io.progress import progress_bar
from ptypinn.io.reconstruction import ReconstructionInput
from ptypinn.physics.finite import require_finite
from ptypinn.study.design import DesignError, MetricsConfig, StudyDesign, check_views
from ptypinn.study.jobs import content_key, run_matrix
from ptypinn.study.layout import RECONSTRUCTION_MANIFEST, SPLITS, dose_label, job_folder
from ptypinn.study.matrix import collect_datasets, missing_view, phase_c_entries, select
from ptypinn.study.outputs import save_reconstruction
from ptypinn.study.records import (
    FileRecord,
    ReconstructionManifest,
    ReconstructionRecord,
    SkipRecord,
    Status,
    earlier_jobs,
    write_manifest,
)
from ptypinn.study.scoring import quality_curve


@dataclass(frozen=True)
class IterativeJob:
    """One dataset to reconstruct with one engine and its options, and where its outputs go
    (``root``: the phase F folder, which its record's files are relative to)."""

    dose: float
    view: str
    split: str
    engine: str
    options: EngineOptions
    dataset: Path
    root: Path
    metrics: MetricsConfig
    dataset_sha256: str = ""

    @property
    def label(self) -> str:
        return f"{dose_label(self.dose)}/{self.view}/{self.split}/{self.engine}"

    @property
    def folder(self) -> Path:
        return job_folder(self.root, self.dose, self.view, self.split, self.engine)

    @property
    def files_root(self) -> Path:
        return self.root

    @property
    def key(self) -> str:
        """SHA-256 of the job's science: a finished job with the same key needs no rerun."""
        science = {
            "dose": self.dose,
            "view": self.view,
            "split": self.split,
            "engine": self.engine,
            "options": self.options.model_dump(mode="json"),
            "dataset_sha256": self.dataset_sha256,
            "metrics": self.metrics.model_dump(mode="json") if self.options.checkpoints else None,
        }
        return content_key(science)

    def record(self, status: Status, error: str | None = None) -> ReconstructionRecord:
        return ReconstructionRecord(
            key=self.key,
            status=status,
            error=error,
            dose=self.dose,
            view=self.view,
            split=self.split,
            engine=self.engine,
            dataset=str(self.dataset),
            dataset_sha256=self.dataset_sha256,
            output=str(self.folder),
        )


def plan_jobs(
    design: StudyDesign,
    phase_c_root: str | os.PathLike,
    phase_d_root: str | os.PathLike,
    artifact_root: str | os.PathLike,
) -> tuple[list[IterativeJob], list[SkipRecord]]:
    """Every job of the design (the baseline and its views, both splits, its engines), in dose,
    view, split, engine order, and the views skipped because their data is missing. Creates
    nothing."""
    entries, skips = collect_datasets(
        phase_c_root, phase_d_root, views=design.view_names(), allow_missing_phase_d=True
    )
    config = design.iterative
    jobs = [
        IterativeJob(
            dose=entry.dose,
            view=entry.view,
            split=split,
            engine=engine,
            options=config.options(engine),
            dataset=entry.train if split == "train" else entry.test,
            root=Path(artifact_root),
            metrics=design.metrics,
            dataset_sha256=entry.train_sha256 if split == "train" else entry.test_sha256,
        )
        for entry in entries
        for split in SPLITS
        for engine in config.engines
    ]
    return jobs, skips


def chosen_jobs(
    jobs: Sequence[IterativeJob],
    doses: Sequence[float] | None = None,
    views: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    engines: Sequence[str] | None = None,
) -> list[IterativeJob]:
    """The jobs every given filter keeps (``None`` or empty keeps all)."""
    unknown = [split for split in splits or () if split not in SPLITS]
    if unknown:
        raise DesignError(f"--split must be one of {list(SPLITS)}, got {unknown}")
    return [
        job
        for job in select(jobs, doses=doses, views=views)
        if (not splits or job.split in splits) and (not engines or job.engine in engines)
    ]


def run_job(job: IterativeJob, show_progress: bool = True) -> ReconstructionRecord:
    """Reconstruct one job and write its files; any failure (the engine cannot run here
    included) is returned in the record, not raised."""
    record = job.record("failed")
    start = time.perf_counter()
    try:
        engine = iterative_reconstructor(job.engine, job.options)
        dataset = load_dataset(job.dataset)
        record.patterns = dataset.count
        if show_progress:
            with progress_bar(job.label, job.options.iterations) as advance:
                rec = engine.reconstruct(ReconstructionInput.from_dataset(dataset), advance)
        else:
            rec = engine.reconstruct(ReconstructionInput.from_dataset(dataset))
        final_loss = float(rec.losses[-1])
        if not math.isfinite(final_loss):
            raise FloatingPointError(f"the loss diverged (final value {final_loss})")
        require_finite(f"the {job.engine} reconstruction", rec.obj)
        provenance = {
            "ptypinn_version": __version__,
            "producer": "ptypinn reconstruct-iterative",
            "dose": job.dose,
            "view": job.view,
            "split": job.split,
            "dataset": str(job.dataset),
            "dataset_sha256": sha256_file(job.dataset),
            "nphotons": dataset.metadata.get("nphotons"),
        }
        rec = replace(rec, metadata={**rec.metadata, **provenance})
        if dataset.obj is not None:  # scored after the run, outside its clock
            record.curve = quality_curve(rec.snapshots, dataset, job.metrics)
        label = f"{job.engine} ({job.split})"
        npz, figure = save_reconstruction(job.folder, rec, dataset.obj, job.dose, job.view, label)
        record = record.model_copy(
            update={
                "status": "ok",
                "final_loss": final_loss,
                "iterations": rec.iterations,
                "reconstruction_time_s": rec.wall_time_s,
                "seconds_per_iteration": rec.seconds_per_iteration,
                "files": {
                    "reconstruction": FileRecord.of(npz, job.root),
                    "figure": FileRecord.of(figure, job.root),
                },
            }
        )
    except Exception as error:  # a failing job is recorded and the matrix goes on
        record.error = f"{type(error).__name__}: {error}"
    record.wall_time_s = time.perf_counter() - start
    return record


UNAVAILABLE = f"{EngineUnavailable.__name__}: "  # how a job's error names an engine that cannot run


def default_workers(design: StudyDesign) -> int:
    """Jobs at once: the CPU count over the threads each engine uses (at least one)."""
    threads = max(design.iterative.options(engine).threads for engine in design.iterative.engines)
    return max(1, (os.cpu_count() or 1) // threads)


def run_iterative_matrix(
    design: StudyDesign,
    phase_c_root: str | os.PathLike,
    phase_d_root: str | os.PathLike,
    artifact_root: str | os.PathLike,
    doses: Sequence[float] | None = None,
    views: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    engines: Sequence[str] | None = None,
    dry_run: bool = False,
    allow_missing_phase_d: bool = False,
    resume: bool = False,
    workers: int | None = None,
) -> ReconstructionManifest:
    """Phase F: reconstruct every chosen job of the design; returns the manifest (written unless
    ``dry_run``). ``workers``: jobs at once (default :func:`default_workers`)."""
    root = Path(artifact_root)
    config = design.iterative
    check_views(design, list(views) if views else None)
    if doses:
        phase_c_entries(Path(phase_c_root), doses)  # a dose phase C does not hold is an error
    plan, skips = plan_jobs(design, phase_c_root, phase_d_root, root)
    chosen = chosen_jobs(plan, doses, views, splits, engines)
    skips = select(skips, doses, views)
    if skips and not allow_missing_phase_d:
        raise missing_view(skips[0])
    manifest = ReconstructionManifest(
        ptypinn_version=__version__,
        engines={
            engine: config.options(engine).model_dump(mode="json") for engine in config.engines
        },
        dry_run=dry_run,
        phase_c_root=str(phase_c_root),
        phase_d_root=str(phase_d_root),
        skipped_views=skips,
        skipped_count=len(skips),
    )
    if dry_run:
        manifest.jobs = [job.record("dry-run") for job in chosen]
        return manifest
    for job in chosen:
        ensure_inside(root, job.folder)

    def save(records: list[ReconstructionRecord]) -> None:
        manifest.jobs = records
        manifest.failed_count = sum(record.status == "failed" for record in records)
        manifest.unavailable_engines = {
            record.engine: record.error.removeprefix(UNAVAILABLE)
            for record in records
            if record.error and record.error.startswith(UNAVAILABLE)
        }
        write_manifest(root / RECONSTRUCTION_MANIFEST, manifest)

    workers = default_workers(design) if workers is None else workers
    run_matrix(
        plan,
        partial(run_job, show_progress=workers <= 1),
        earlier_jobs(ReconstructionManifest, root / RECONSTRUCTION_MANIFEST),
        resume,
        chosen={job.label for job in chosen},
        save=save,
        workers=workers,
        description="iterative jobs",
    )
    return manifest
