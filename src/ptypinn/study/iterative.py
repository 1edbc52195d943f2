"""Phase F job matrix: reconstruct every (dose, view, split) dataset with every iterative engine.

Jobs are the datasets of :func:`ptypinn.study.matrix.collect_datasets` (baseline, dense, sparse per
dose) times the splits (train, test) times the design's engines (``iterative.engines``),
narrowed by the dose/view/split filters. Output layout::

    <artifact-root>/dose_<int>/<view>/<split>/<engine>/reconstruction.npz
    <artifact-root>/dose_<int>/<view>/<split>/<engine>/reconstruction.png
    <artifact-root>/reconstruction_manifest.json

A job that fails is recorded in the manifest (status ``failed`` with the error) and the matrix
goes on; a reconstruction with NaN or infinite values is such a failure. An engine that cannot
run here (its library is missing or cannot be imported) fails each of its jobs with that reason,
without stopping the other engines. A dry run plans the jobs and writes nothing. With ``resume``,
a job whose earlier record used the same engine, options and input data (SHA-256) and whose
files are intact is kept, not run again.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ptypinn import __version__
from ptypinn.engines.api import EngineUnavailable, Reconstructor
from ptypinn.engines.registry import iterative_reconstructor
from ptypinn.io.artifacts import (
    ensure_inside,
    file_record,
    read_json,
    record_matches,
    sha256_file,
    write_json,
)
from ptypinn.io.dataset import load_dataset
from ptypinn.io.progress import progress_bar
from ptypinn.io.reconstruction import ReconstructionInput
from ptypinn.physics.finite import require_finite
from ptypinn.study.design import DesignError, IterativeConfig
from ptypinn.study.layout import RECONSTRUCTION_MANIFEST, SPLITS, dose_label, job_folder
from ptypinn.study.matrix import BASELINE, DEFAULT_VIEWS, SkipEvent, collect_datasets, select
from ptypinn.study.outputs import save_reconstruction


@dataclass(frozen=True)
class IterativeJob:
    """One dataset to reconstruct with one engine and the folder its outputs go to."""

    dose: float
    view: str
    split: str
    engine: str
    dataset: Path
    folder: Path
    dataset_sha256: str = ""

    @property
    def label(self) -> str:
        return f"{dose_label(self.dose)}/{self.view}/{self.split}/{self.engine}"

    def record(self) -> dict:
        return {
            "dose": self.dose,
            "view": self.view,
            "split": self.split,
            "engine": self.engine,
            "dataset": str(self.dataset),
            "dataset_sha256": self.dataset_sha256,
            "output": str(self.folder),
            "reused": False,
        }


def plan_jobs(
    phase_c_root: str | os.PathLike,
    phase_d_root: str | os.PathLike,
    artifact_root: str | os.PathLike,
    engines: Sequence[str],
    doses: Sequence[float] | None = None,
    views: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    allow_missing_phase_d: bool = False,
) -> tuple[list[IterativeJob], list[SkipEvent]]:
    """The jobs the filters select, in dose, view, split, engine order, and the views skipped.

    Creates nothing.
    """
    splits = list(splits) if splits else list(SPLITS)
    unknown = [split for split in splits if split not in SPLITS]
    if unknown:
        raise DesignError(f"--split must be one of {list(SPLITS)}, got {unknown}")
    overlap_views = [view for view in views if view != BASELINE] if views else list(DEFAULT_VIEWS)
    entries, skips = collect_datasets(
        phase_c_root,
        phase_d_root,
        views=overlap_views,
        allow_missing_phase_d=allow_missing_phase_d,
        doses=doses or None,
    )
    jobs = [
        IterativeJob(
            dose=entry.dose,
            view=entry.view,
            split=split,
            engine=engine,
            dataset=entry.train if split == "train" else entry.test,
            folder=job_folder(artifact_root, entry.dose, entry.view, split, engine),
            dataset_sha256=entry.train_sha256 if split == "train" else entry.test_sha256,
        )
        for entry in select(entries, doses=doses, views=views)
        for split in splits
        for engine in engines
    ]
    return jobs, skips


def run_job(job: IterativeJob, artifact_root: Path, engine: Reconstructor, iterations: int) -> dict:
    """Reconstruct one job (``iterations`` long, for the progress bar) and write its files; any
    failure is returned in the record, not raised."""
    record: dict = {**job.record(), "status": "failed", "error": None}
    start = time.perf_counter()
    try:
        dataset = load_dataset(job.dataset)
        record["patterns"] = dataset.count
        with progress_bar(job.label, iterations) as advance:
            rec = engine.reconstruct(ReconstructionInput.from_dataset(dataset), advance)
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
        label = f"{job.engine} ({job.split})"
        npz, figure = save_reconstruction(job.folder, rec, dataset.obj, job.dose, job.view, label)
        record.update(
            status="ok",
            final_loss=final_loss,
            iterations=rec.iterations,
            reconstruction_time_s=rec.wall_time_s,
            seconds_per_iteration=rec.seconds_per_iteration,
            files={
                "reconstruction": file_record(npz, artifact_root),
                "figure": file_record(figure, artifact_root),
            },
        )
    except Exception as error:  # a failing job is recorded and the matrix goes on
        record["error"] = f"{type(error).__name__}: {error}"
    record["wall_time_s"] = time.perf_counter() - start
    return record


def _reusable(root: Path, config: IterativeConfig) -> dict[str, dict]:
    """Finished records of an earlier manifest whose engine ran with the same options and whose
    files are intact, by job label."""
    try:
        old = read_json(root / RECONSTRUCTION_MANIFEST)
        return {
            f"{dose_label(r['dose'])}/{r['view']}/{r['split']}/{r['engine']}": r
            for r in old["jobs"]
            if r["status"] == "ok"
            and old["engines"].get(r["engine"])
            == config.options(r["engine"]).model_dump(mode="json")
            and all(record_matches(file, root) for file in r["files"].values())
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _other_records(
    root: Path, config: IterativeConfig, selected: set[str]
) -> tuple[list[dict], dict[str, dict]]:
    """Finished records of an earlier manifest for jobs outside this run's selection whose
    files and input data are intact (and, for an engine this run also uses, whose options are
    this run's), with the options of their engines: a filtered run keeps them."""
    try:
        old = read_json(root / RECONSTRUCTION_MANIFEST)
        kept, options = [], {}
        for record in old["jobs"]:
            label = "/".join(
                (dose_label(record["dose"]), record["view"], record["split"], record["engine"])
            )
            engine = record["engine"]
            settings = old["engines"].get(engine)
            data = Path(record["dataset"])
            if (
                label in selected
                or record["status"] != "ok"
                or (
                    engine in config.engines
                    and settings != config.options(engine).model_dump(mode="json")
                )
                or not data.is_file()
                or sha256_file(data) != record.get("dataset_sha256")
                or not all(record_matches(file, root) for file in record["files"].values())
            ):
                continue
            kept.append({**record, "reused": True})
            options[engine] = settings
        return kept, options
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return [], {}


def run_iterative_matrix(
    phase_c_root: str | os.PathLike,
    phase_d_root: str | os.PathLike,
    artifact_root: str | os.PathLike,
    config: IterativeConfig | None = None,
    doses: Sequence[float] | None = None,
    views: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    dry_run: bool = False,
    allow_missing_phase_d: bool = False,
    resume: bool = False,
) -> dict:
    """Phase F: reconstruct every selected job; returns the manifest (written unless ``dry_run``).

    ``config`` (default: the design's defaults) lists the engines and their options.
    """
    config = config or IterativeConfig()
    root = Path(artifact_root)
    jobs, skips = plan_jobs(
        phase_c_root,
        phase_d_root,
        root,
        config.engines,
        doses,
        views,
        splits,
        allow_missing_phase_d,
    )
    manifest: dict = {
        "phase": "F",
        "ptypinn_version": __version__,
        "engines": {
            engine: config.options(engine).model_dump(mode="json") for engine in config.engines
        },
        "dry_run": dry_run,
        "phase_c_root": str(phase_c_root),
        "phase_d_root": str(phase_d_root),
        "jobs": [],
        "unavailable_engines": {},
        "skipped_views": [skip.to_dict() for skip in skips],
        "skipped_count": len(skips),
        "failed_count": 0,
    }
    if dry_run:
        manifest["jobs"] = [{**job.record(), "status": "dry-run", "error": None} for job in jobs]
        return manifest
    for job in jobs:
        ensure_inside(root, job.folder)
    engines: dict[str, Reconstructor] = {}
    for engine in dict.fromkeys(job.engine for job in jobs):
        try:
            engines[engine] = iterative_reconstructor(engine, config.options(engine))
        except EngineUnavailable as error:
            manifest["unavailable_engines"][engine] = str(error)
    earlier = _reusable(root, config) if resume else {}
    if any(choice is not None for choice in (doses, views, splits)):
        # a filtered run keeps the records of the jobs it leaves out
        kept, options = _other_records(root, config, {job.label for job in jobs})
        manifest["jobs"].extend(kept)
        manifest["engines"] = {**options, **manifest["engines"]}
    for job in jobs:
        old = earlier.get(job.label)
        if old is not None and old.get("dataset_sha256") == job.dataset_sha256:
            record = {**old, "reused": True}
        elif job.engine in engines:
            record = run_job(job, root, engines[job.engine], config.options(job.engine).iterations)
        else:
            reason = manifest["unavailable_engines"][job.engine]
            record = {**job.record(), "status": "failed", "error": f"EngineUnavailable: {reason}"}
        manifest["jobs"].append(record)
        manifest["failed_count"] = sum(record["status"] == "failed" for record in manifest["jobs"])
        write_json(
            root / RECONSTRUCTION_MANIFEST, manifest
        )  # after every job: an interrupted run leaves a record
    write_json(root / RECONSTRUCTION_MANIFEST, manifest)
    return manifest
