"""Typed records of every phase manifest: what one phase hands to the next.

Each phase writes its manifest through :func:`write_manifest` and every reader (the phases that
follow, the runner, the command line) reads it through :func:`read_manifest`, as one of the
records below, never as a raw dict:

* :class:`SimulationManifest` (phase C) and :class:`OverlapManifest` (phase D): the datasets,
  each file with its SHA-256;
* :class:`TrainingManifest` (phase E) of :class:`TrainingRecord` jobs;
* :class:`ReconstructionManifest` (phase F) of :class:`ReconstructionRecord` jobs;
* :class:`InferenceManifest` (the PtychoPINN reconstructions) of :class:`InferenceRecord` jobs,
  each method named by its :class:`MethodKey`;
* :class:`ComparisonManifest` (phase G).

A job of phase E or F is a :class:`JobRecord`: its content key (a finished job with the same key
and intact files needs no rerun), its status, its files with SHA-256 and a one-line summary.
Field names are those of the manifests the previous release wrote, so they load; a manifest that
does not fit (another release, a hand edit) is refused with one :class:`ManifestError` naming the
file and the first field that does not fit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ptypinn.engines.api import ENGINE_LABELS
from ptypinn.io.artifacts import file_record, read_json, record_matches, write_json
from ptypinn.io.dataset import DatasetError
from ptypinn.study.layout import dose_label, gridsize_label, model_folder

Status = Literal["ok", "failed", "skipped", "dry-run"]


class ManifestError(DatasetError):
    """A manifest that cannot be read as the record of its phase."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileRecord(_Record):
    """A file a phase wrote: its path (relative to the folder its phase names), size, SHA-256."""

    path: str
    bytes: int
    sha256: str

    @classmethod
    def of(cls, path: str | os.PathLike, root: str | os.PathLike) -> FileRecord:
        return cls.model_validate(file_record(path, root))

    def intact(self, root: str | os.PathLike) -> bool:
        """Whether the file (under ``root``) still has its recorded bytes."""
        return record_matches(self.model_dump(), root)


class SkipRecord(_Record):
    """A view left out of a job matrix, and why."""

    dose: float
    view: str
    reason: str


class CurvePoint(_Record):
    """One point of a time-to-quality curve: the object after ``iteration`` iterations,
    ``seconds`` into the run (a warm start's include the network's), and its phase SSIM, scored
    outside the run's clock (:func:`ptypinn.study.scoring.quality_curve`; ``None``: not
    measurable)."""

    iteration: int
    seconds: float
    phase_ssim: float | None


class JobRecord(_Record):
    """What every job of a matrix records: its content key, status, files and outcome."""

    key: str = ""
    status: Status
    reused: bool = False
    error: str | None = None
    wall_time_s: float | None = None
    files: dict[str, FileRecord] = {}

    @property
    def label(self) -> str:
        """Where the job sits in its matrix (``dose_1000/dense/gs2``)."""
        raise NotImplementedError

    def summary(self) -> str:
        """One line: the job, its status and its outcome."""
        raise NotImplementedError

    def reused_note(self) -> str:
        return " (kept from an earlier run)" if self.reused else ""


# Phase C


class SimulationEntry(_Record):
    """One simulated dose: its split files and what was measured on them."""

    dose: float
    folder: str = ""
    files: dict[str, FileRecord]
    dose_scale: float | None = None
    noise_seed: list[int] | None = None
    counts: dict[str, int] = {}
    measured_photons_per_pattern: dict[str, float] = {}

    @model_validator(mode="after")
    def _folder_of_the_dose(self) -> SimulationEntry:
        self.folder = self.folder or dose_label(self.dose)
        return self


class SimulationManifest(_Record):
    phase: Literal["C"] = "C"
    ptypinn_version: str = ""
    design: dict[str, Any] = {}
    simulation_seed: int | None = None
    split_rule: str = ""
    photons_note: str = ""
    source: dict[str, Any] = {}
    doses: list[SimulationEntry]

    def summary(self, root: Path) -> str:
        """One line per dose (``root``: the phase C folder)."""
        return "\n".join(
            f"dose {e.dose:g}: {e.counts['train']} train / {e.counts['test']} test patterns "
            f"-> {root / e.folder}"
            for e in self.doses
        )


# Phase D


class ViewRecord(_Record):
    """One view of one dose: its rule, the positions kept and, once formed, its split files."""

    view: str
    formed: bool
    rule: str | None = None
    target_fraction: float | None = None
    spacing_px: float | None = None
    probe_diameter_px: float | None = None
    counts: dict[str, dict[str, int]] = {}
    nearest_overlap: dict[str, float] = {}
    knn_overlap: dict[str, float] = {}
    files: dict[str, FileRecord] = {}

    def summary(self, neighbor_count: int | None) -> str:
        kept = ", ".join(
            f"{c['kept']}/{c['kept'] + c['rejected']} {split}" for split, c in self.counts.items()
        )
        status = "NOT FORMED"
        if self.formed:
            nearest, knn = (
                "/".join(f"{v:.3f}" for v in values.values())
                for values in (self.nearest_overlap, self.knn_overlap)
            )
            status = (
                f"overlap target {self.target_fraction:g}, nearest-neighbour {nearest}, "
                f"mean of K={neighbor_count} nearest {knn} (train/test)"
            )
        rule = f"{self.rule}, D = {self.probe_diameter_px:.1f} px, S = {self.spacing_px:.1f} px"
        return f"{self.view} ({rule}): kept {kept}; {status}"


class OverlapEntry(_Record):
    dose: float
    folder: str = ""
    views: list[ViewRecord]
    probe_diameter_px: float | None = None


class NotFormed(_Record):
    """A view's split with too few positions (so the view was not written)."""

    dose: float
    view: str
    split: str
    reason: str
    count: int | None = None


class OverlapManifest(_Record):
    phase: Literal["D"] = "D"
    ptypinn_version: str = ""
    design: str = ""
    seeds: dict[str, int] = {}
    patch_size: int | None = None
    neighbor_count: int | None = None
    min_view_positions: int | None = None
    base_step_px: float | None = None
    selection: str = ""
    spacing_rules: dict[str, str] = {}
    overlap_measures: dict[str, str] = {}
    probe_footprint: str = ""
    coverage_region: str = ""
    source_manifest: FileRecord
    doses: list[OverlapEntry]
    not_formed: list[NotFormed] = []

    def summary(self) -> str:
        """One line per view of every dose: its rule, the positions kept and its overlap."""
        return "\n".join(
            f"dose {entry.dose:g} {view.summary(self.neighbor_count)}"
            for entry in self.doses
            for view in entry.views
        )


# Phase E


class TrainingRecord(JobRecord):
    """One training job; its bundle is ``files['bundle']`` (relative to ``artifact_dir``)."""

    dose: float
    view: str
    gridsize: int
    method: str = "pinn"
    train_path: str
    train_sha256: str
    test_path: str
    artifact_dir: str
    log_path: str
    command: str
    final_loss: float | None = None
    epochs: int | None = None
    config: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _bundle_of_the_previous_release(cls, values: Any) -> Any:
        """The previous release recorded the bundle as ``bundle``, ``bundle_sha256`` and
        ``bundle_bytes``; they become ``files['bundle']``."""
        if isinstance(values, dict) and "bundle" in values:
            values = dict(values)
            path, digest, size = (
                values.pop(k, None) for k in ("bundle", "bundle_sha256", "bundle_bytes")
            )
            if path is not None:
                values["files"] = {"bundle": {"path": path, "bytes": size, "sha256": digest}}
        return values

    @property
    def label(self) -> str:
        return cell_label(self.dose, self.view, self.gridsize, self.method)

    @property
    def bundle(self) -> FileRecord | None:
        return self.files.get("bundle")

    def summary(self) -> str:
        line = f"dose {self.dose:g} {self.view} {model_folder(self.method, self.gridsize)}: "
        line += self.status
        if self.status == "ok" and self.bundle is not None:
            line += f", final loss {self.final_loss:.6g}, bundle {self.artifact_dir}/"
            line += self.bundle.path + self.reused_note()
        elif self.status == "failed":
            line += f" ({self.error}; log {self.log_path})"
        else:
            line += f"\n    {self.command}"
        return line


def cell_label(dose: float, view: str, gridsize: int, method: str) -> str:
    """``dose_1000/dense/gs2``: a training job's place in the matrix."""
    return f"{dose_label(dose)}/{view}/{model_folder(method, gridsize)}"


class TrainingManifest(_Record):
    phase: Literal["E"] = "E"
    timestamp: str
    phase_c_root: str
    phase_d_root: str
    artifact_root: str
    design: str
    filters: dict[str, list[float] | list[str] | list[int]]
    dry_run: bool
    enumerated_count: int
    job_count: int
    jobs: list[TrainingRecord] = []
    failed_count: int = 0
    skipped_views: list[SkipRecord] = []
    skipped_count: int = 0

    def summary(self) -> str:
        lines = [
            f"jobs: {self.enumerated_count} enumerated, {self.job_count} after filters, "
            f"{self.skipped_count} views skipped"
        ]
        lines += [f"  skipped dose {s.dose:g} {s.view}: {s.reason}" for s in self.skipped_views]
        return "\n".join(lines + [f"  {job.summary()}" for job in self.jobs])


# Phase F


class ReconstructionRecord(JobRecord):
    """One iterative job; its files are relative to the phase F folder."""

    dose: float
    view: str
    split: str
    engine: str
    dataset: str
    dataset_sha256: str = ""
    output: str
    patterns: int | None = None
    final_loss: float | None = None
    iterations: int | None = None
    reconstruction_time_s: float | None = None
    seconds_per_iteration: float | None = None
    curve: list[CurvePoint] = []

    @property
    def label(self) -> str:
        return f"{dose_label(self.dose)}/{self.view}/{self.split}/{self.engine}"

    def summary(self) -> str:
        detail = self.error or (
            f"final loss {self.final_loss:.3g}, {self.wall_time_s or 0:.1f} s"
            if self.status == "ok"
            else self.output
        )
        where = f"dose {self.dose:g} {self.view}/{self.split} {self.engine}"
        return f"{where}: {self.status} {detail}{self.reused_note()}"


class ReconstructionManifest(_Record):
    phase: Literal["F"] = "F"
    ptypinn_version: str = ""
    engines: dict[str, dict[str, Any]]
    dry_run: bool
    phase_c_root: str
    phase_d_root: str
    jobs: list[ReconstructionRecord] = []
    unavailable_engines: dict[str, str] = {}
    skipped_views: list[SkipRecord] = []
    skipped_count: int = 0
    failed_count: int = 0

    def summary(self) -> str:
        lines = [job.summary() for job in self.jobs]
        lines += [f"skipped dose {s.dose:g} {s.view}: {s.reason}" for s in self.skipped_views]
        return "\n".join(lines)


# Methods and the inference phase


class MethodKey(_Record):
    """What identifies a method of the comparison: a PtychoPINN model (``kind`` ``ptychopinn``,
    its training ``recipe`` — ``pinn`` or ``supervised`` — and ``gridsize``; ``refine``: fine-tuned
    on the test diffraction first; ``input_alone``: its generator's input without the network) or
    an iterative engine (``kind`` ``engine``, ``recipe`` the engine's name; ``init``: the method
    whose reconstruction starts it, for a warm-started engine)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ptychopinn", "engine"]
    recipe: str
    gridsize: int = 0
    refine: bool = False
    input_alone: bool = False
    init: MethodKey | None = None

    @property
    def folder(self) -> str:
        """Its folder name, plain ``[a-z0-9_-]``: ``ptychopinn_gs2_refine``, ``cdtools``."""
        if self.kind == "engine":
            name = self.recipe
        else:
            name = f"ptychopinn_{model_folder(self.recipe, self.gridsize)}"
            name += "_input_alone" if self.input_alone else ""
            name += "_refine" if self.refine else ""
        return name + (f"_from_{self.init.folder}" if self.init is not None else "")

    @property
    def label(self) -> str:
        """Its name in the tables: ``PtychoPINN gs2 + refine``, ``CDTools``."""
        if self.kind == "engine":
            name = ENGINE_LABELS.get(self.recipe, self.recipe)
            return name + (f" from {self.init.label}" if self.init is not None else "")
        model = "PtychoPINN" if self.recipe == "pinn" else self.recipe
        name = f"{model} {gridsize_label(self.gridsize)}"
        return (
            name
            + (" input alone" if self.input_alone else "")
            + (" + refine" if self.refine else "")
        )

    @property
    def model(self) -> MethodKey:
        """The trained model itself (no refinement, not its input alone)."""
        return self.model_copy(update={"refine": False, "input_alone": False})


class InferenceRecord(JobRecord):
    """One PtychoPINN reconstruction of a view's test split; its files are relative to the
    inference folder. ``skipped``: a method that does not apply (an input alone of a generator
    given no object guess, or of a model that was never trained)."""

    dose: float
    view: str
    method: MethodKey
    trained_view: str
    dataset: str
    dataset_sha256: str
    bundle: str
    training_seconds: float | None = None
    iterations: int | None = None
    curve: list[CurvePoint] = []

    @property
    def label(self) -> str:
        return f"{dose_label(self.dose)}/{self.view}/test/{self.method.folder}"

    def summary(self) -> str:
        detail = self.error or (
            f"{self.iterations} iterations, {self.wall_time_s or 0:.1f} s"
            if self.status == "ok"
            else ""
        )
        where = f"dose {self.dose:g} {self.view}/test {self.method.label}"
        return f"{where}: {self.status} {detail}{self.reused_note()}"


class InferenceManifest(_Record):
    phase: Literal["inference"] = "inference"
    ptypinn_version: str = ""
    jobs: list[InferenceRecord] = []
    failed_count: int = 0

    def summary(self) -> str:
        return "\n".join(job.summary() for job in self.jobs)


# Phase G


class ComparisonManifest(_Record):
    phase: Literal["G"] = "G"
    ptypinn_version: str = ""
    design: str
    metrics_csv: str
    metrics_json: str
    report_html: str
    report_md: str
    rows: int
    timings: list[dict[str, Any]] = []
    regions: list[dict[str, Any]] = []
    missing: list[str] = []

    def summary(self) -> str:
        return f"{self.rows} scores, {len(self.missing)} missing or skipped"


Manifest = TypeVar("Manifest", bound=BaseModel)
PHASE_NAMES = {
    SimulationManifest: "phase C",
    OverlapManifest: "phase D",
    TrainingManifest: "training",
    ReconstructionManifest: "reconstruction",
    InferenceManifest: "inference",
    ComparisonManifest: "comparison",
}


def read_manifest(kind: type[Manifest], path: str | os.PathLike) -> Manifest:
    """The manifest in ``path`` as a ``kind`` record. A missing file raises
    :class:`FileNotFoundError`; one that cannot be read as ``kind`` a :class:`ManifestError`."""
    path = Path(path)
    name = PHASE_NAMES.get(kind, kind.__name__)
    try:
        return kind.model_validate(read_json(path))
    except FileNotFoundError:
        raise
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "its top level"
        raise ManifestError(
            f"{path} is not a readable {name} manifest: {where}: {first['msg']} "
            "(written by another release? run that phase again)"
        ) from None
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path} is not a readable {name} manifest: {error}") from None


def earlier_jobs(kind: type[Manifest], path: str | os.PathLike) -> dict[str, Any]:
    """The job records of an earlier ``kind`` manifest by label; none when there is no readable
    one (a run then starts afresh)."""
    try:
        manifest: Any = read_manifest(kind, path)
    except (OSError, ValueError):
        return {}
    return {record.label: record for record in manifest.jobs}


def write_manifest(path: str | os.PathLike, manifest: BaseModel) -> Path:
    """Write a manifest record as JSON, atomically."""
    return write_json(path, manifest.model_dump(mode="json"))
