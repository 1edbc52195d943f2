"""Phase F job matrix: reconstruct every (dose, view, split) dataset with an iterative engine.

Jobs are the datasets of :func:`ptypinn.study.matrix.collect_datasets` (baseline, dense, sparse per
dose) times the splits (train, test), narrowed by the dose/view/split filters. Output layout::

    <artifact-root>/dose_<int>/<view>/<split>/reconstruction.npz
    <artifact-root>/dose_<int>/<view>/<split>/reconstruction.png
    <artifact-root>/reconstruction_manifest.json

A job that fails is recorded in the manifest (status ``failed`` with the error) and the matrix
goes on; a reconstruction with NaN or infinite values is such a failure. A dry run plans the
jobs and writes nothing. With ``resume``, a job whose earlier record used the same engine,
settings and input data (SHA-256) and whose files are intact is kept, not run again.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptypinn import __version__
from ptypinn.io.artifacts import file_record, record_matches, sha256_file, write_json, write_npz
from ptypinn.io.dataset import PtychoDataset, load_dataset, metadata_entry
from ptypinn.study.design import DesignError
from ptypinn.engines.iterative import DEFAULT_BATCH_SIZE, DEFAULT_ENGINE, DEFAULT_ITERATIONS, DEFAULT_LEARNING_RATE, ReconstructionInput, ReconstructionResult, reconstruct, require_engine
from ptypinn.study.layout import FIGURE_FILE, RECONSTRUCTION_FILE, RECONSTRUCTION_MANIFEST, SPLITS, dose_label, job_folder
from ptypinn.study.matrix import BASELINE, DEFAULT_VIEWS, SkipEvent, collect_datasets, select
from ptypinn.analysis.metrics import align, centre_box, region_box
from ptypinn.analysis.report import Panel, reconstruction_grid
from ptypinn.physics.finite import require_finite

MIN_FIGURE_SIDE = 16  # px: the smallest rectangle of probe centres the figure aligns and crops to


@dataclass(frozen=True)
class IterativeJob:
    """One dataset to reconstruct and the folder its outputs go to."""

    dose: float
    view: str
    split: str
    dataset: Path
    folder: Path
    dataset_sha256: str = ""

    @property
    def label(self) -> str:
        return f"{dose_label(self.dose)}/{self.view}/{self.split}"


def plan_jobs(
    phase_c_root: str | os.PathLike,
    phase_d_root: str | os.PathLike,
    artifact_root: str | os.PathLike,
    doses: Sequence[float] | None = None,
    views: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    allow_missing_phase_d: bool = False,
) -> tuple[list[IterativeJob], list[SkipEvent]]:
    """The jobs the filters select, in dose, view, split order, and the views skipped. Creates nothing."""
    splits = list(splits) if splits else list(SPLITS)
    unknown = [split for split in splits if split not in SPLITS]
    if unknown:
        raise DesignError(f"--split must be one of {list(SPLITS)}, got {unknown}")
    overlap_views = [view for view in views if view != BASELINE] if views else list(DEFAULT_VIEWS)
    entries, skips = collect_datasets(
        phase_c_root, phase_d_root, views=overlap_views, allow_missing_phase_d=allow_missing_phase_d, doses=doses or None
    )
    jobs = [
        IterativeJob(
            dose=entry.dose,
            view=entry.view,
            split=split,
            dataset=entry.train if split == "train" else entry.test,
            folder=job_folder(artifact_root, entry.dose, entry.view, split),
            dataset_sha256=entry.train_sha256 if split == "train" else entry.test_sha256,
        )
        for entry in select(entries, doses=doses, views=views)
        for split in splits
    ]
    return jobs, skips


def write_reconstruction(job: IterativeJob, dataset: PtychoDataset, result: ReconstructionResult) -> tuple[Path, Path]:
    """``reconstruction.npz`` (arrays + JSON metadata) and ``reconstruction.png`` of one job."""
    metadata = {
        "ptypinn_version": __version__,
        "producer": "ptypinn reconstruct-iterative",
        "engine": result.engine,
        "iterations": result.iterations,
        "probe_refined": result.probe_refined,
        "initial_object": "flat (ones)",
        "initial_probe": "probeGuess of the dataset",
        "settings": result.settings,
        "wall_time_s": result.wall_time_s,
        "dose": job.dose,
        "view": job.view,
        "split": job.split,
        "dataset": str(job.dataset),
        "dataset_sha256": sha256_file(job.dataset),
        "nphotons": dataset.metadata.get("nphotons"),
        "loss": "CDTools amplitude MSE per detector pixel, after each iteration",
    }
    arrays = {
        "objectGuess": result.obj,
        "probeGuess": result.probe,
        "xcoords": result.positions_px[:, 0].copy(),
        "ycoords": result.positions_px[:, 1].copy(),
        "loss_history": result.losses,
        "wall_time_s": np.float64(result.wall_time_s),
        "iterations": np.int64(result.iterations),
        "metadata": metadata_entry(metadata),
    }
    npz = write_npz(job.folder / RECONSTRUCTION_FILE, arrays)
    figure = reconstruction_grid(figure_panels(job, dataset, result), job.dose, job.view, job.folder / FIGURE_FILE)
    return npz, figure


def figure_panels(job: IterativeJob, dataset: PtychoDataset, result: ReconstructionResult) -> list[Panel]:
    """Reconstruction (aligned to the ground truth, when there is one) and ground truth, cropped to
    the rectangle of probe centres: outside it pixels are weakly constrained and drown the colour
    scale. The whole object is shown when that rectangle is too thin to align on."""
    region = centre_box(result.positions_px, result.obj.shape)
    rows, cols = region_box(region)
    if min(rows.stop - rows.start, cols.stop - cols.start) < MIN_FIGURE_SIDE:
        rows = cols = slice(None)
    label = f"{result.engine} ({job.split})"
    if dataset.obj is None or dataset.obj.shape != result.obj.shape:
        return [Panel(job.dose, job.view, label, result.obj[rows, cols])]
    if rows != slice(None):
        aligned, _ = align(result.obj, dataset.obj, region)
        label = f"{label}, aligned"
    else:
        aligned = result.obj
    return [Panel(job.dose, job.view, "ground truth", dataset.obj[rows, cols]), Panel(job.dose, job.view, label, aligned[rows, cols])]


def run_job(job: IterativeJob, artifact_root: Path, engine: str, iterations: int, **settings: object) -> dict:
    """Reconstruct one job and write its files; any failure is returned in the record, not raised."""
    record: dict = {
        "dose": job.dose,
        "view": job.view,
        "split": job.split,
        "dataset": str(job.dataset),
        "dataset_sha256": job.dataset_sha256,
        "status": "failed",
        "error": None,
        "reused": False,
    }
    start = time.perf_counter()
    try:
        dataset = load_dataset(job.dataset)
        record["patterns"] = dataset.count
        result = reconstruct(ReconstructionInput.from_dataset(dataset), engine=engine, iterations=iterations, progress=job.label, **settings)
        final_loss = float(result.losses[-1])
        if not math.isfinite(final_loss):
            raise FloatingPointError(f"the loss diverged (final value {final_loss})")
        require_finite(f"the {engine} reconstruction", result.obj)
        npz, figure = write_reconstruction(job, dataset, result)
        record.update(
            status="ok",
            final_loss=final_loss,
            reconstruction_time_s=result.wall_time_s,
            seconds_per_iteration=result.wall_time_s / result.iterations,
            files={"reconstruction": file_record(npz, artifact_root), "figure": file_record(figure, artifact_root)},
        )
    except Exception as error:  # a failing job is recorded and the matrix goes on
        record["error"] = f"{type(error).__name__}: {error}"
    record["wall_time_s"] = time.perf_counter() - start
    return record


def _reusable(root: Path, engine: str, iterations: int, settings: dict) -> dict[str, dict]:
    """Finished records of an earlier manifest with the same engine and settings and intact
    files, by job label."""
    try:
        old = json.loads((root / RECONSTRUCTION_MANIFEST).read_text(encoding="utf-8"))
        if (old["engine"], old["iterations"], old["settings"]) != (engine, iterations, settings):
            return {}
        return {
            f"{dose_label(r['dose'])}/{r['view']}/{r['split']}": r
            for r in old["jobs"]
            if r["status"] == "ok"
            and all(record_matches(file, root) for file in r["files"].values())
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def run_iterative_matrix(
    phase_c_root: str | os.PathLike,
    phase_d_root: str | os.PathLike,
    artifact_root: str | os.PathLike,
    doses: Sequence[float] | None = None,
    views: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    engine: str = DEFAULT_ENGINE,
    iterations: int = DEFAULT_ITERATIONS,
    dry_run: bool = False,
    allow_missing_phase_d: bool = False,
    seed: int = 0,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    refine_probe: bool = False,
    resume: bool = False,
) -> dict:
    """Phase F: reconstruct every selected job; returns the manifest (written unless ``dry_run``).

    The engine is checked before any job runs (:class:`ptypinn.engines.iterative.EngineUnavailable`).
    """
    if iterations < 1:
        raise DesignError(f"--iterations must be at least 1, got {iterations}")
    require_engine(engine)
    root = Path(artifact_root)
    jobs, skips = plan_jobs(phase_c_root, phase_d_root, root, doses, views, splits, allow_missing_phase_d)
    settings = {"seed": seed, "learning_rate": learning_rate, "batch_size": batch_size, "refine_probe": refine_probe}
    manifest: dict = {
        "phase": "F",
        "ptypinn_version": __version__,
        "engine": engine,
        "iterations": iterations,
        "settings": settings,
        "dry_run": dry_run,
        "phase_c_root": str(phase_c_root),
        "phase_d_root": str(phase_d_root),
        "jobs": [],
        "skipped_views": [skip.to_dict() for skip in skips],
        "skipped_count": len(skips),
        "failed_count": 0,
    }
    if dry_run:
        manifest["jobs"] = [
            {"dose": job.dose, "view": job.view, "split": job.split, "dataset": str(job.dataset), "output": str(job.folder), "status": "dry-run", "error": None}
            for job in jobs
        ]
        return manifest
    earlier = _reusable(root, engine, iterations, settings) if resume else {}
    for job in jobs:
        old = earlier.get(job.label)
        if old is not None and old.get("dataset_sha256") == job.dataset_sha256:
            manifest["jobs"].append({**old, "reused": True})
        else:
            manifest["jobs"].append(run_job(job, root, engine, iterations, **settings))
        manifest["failed_count"] = sum(record["status"] == "failed" for record in manifest["jobs"])
        write_json(root / RECONSTRUCTION_MANIFEST, manifest)  # after every job, so an interrupted run leaves a record
    write_json(root / RECONSTRUCTION_MANIFEST, manifest)
    return manifest
