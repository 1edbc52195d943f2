"""The study matrix: which datasets exist for each dose and view, and which are skipped.

Training (phase E) and iterative reconstruction (phase F) both run one job per dose and view:

* ``baseline`` — the full phase C scan;
* every overlap view of the design (``dense``, ``sparse`` in the presets) — the phase D subset.

The design's ``gridsizes`` decide which models train on which dataset
(:func:`training_gridsizes`): the baseline at gridsize 1, every overlap view at each listed
gridsize above 1.

:func:`collect_datasets` reads them from the phase C and D manifests, never from folder names,
so files left by an earlier design are never picked up, and checks every file against the
SHA-256 its manifest records: a file changed since its phase wrote it is an error. It creates
nothing. A missing dataset is an error naming the view and the file, unless missing phase D
views are allowed, in which case the view is skipped and a :class:`SkipRecord` records why.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from ptypinn.io.artifacts import sha256_file
from ptypinn.io.dataset import DatasetError
from ptypinn.study.layout import (
    OVERLAP_MANIFEST,
    SIMULATION_MANIFEST,
    SPLITS,
    dose_key,
    dose_label,
)
from ptypinn.study.records import (
    FileRecord,
    ManifestError,
    NotFormed,
    OverlapManifest,
    SimulationEntry,
    SimulationManifest,
    SkipRecord,
    ViewRecord,
    read_manifest,
)

BASELINE = "baseline"
MISSING = "missing phase D data"


class MissingDatasetError(DatasetError):
    """A dataset the matrix needs is absent."""


def training_gridsizes(view: str, gridsizes: Sequence[int]) -> tuple[int, ...]:
    """Gridsizes the study trains on a view's data: the baseline (the full scan) at gridsize 1
    when the design lists 1, every overlap view at each listed gridsize above 1."""
    if view == BASELINE:
        return (1,) if 1 in gridsizes else ()
    return tuple(sorted(g for g in gridsizes if g > 1))


def trained_view(view: str, gridsize: int) -> str:
    """The view whose training split taught the model of ``gridsize`` that the comparison runs on
    ``view``'s test data: the baseline (full scan) at gridsize 1, the view itself above
    (:func:`training_gridsizes`)."""
    return BASELINE if gridsize == 1 else view


@dataclass(frozen=True)
class DatasetEntry:
    """The train and test files of one dose and view, with the SHA-256 their manifest records."""

    dose: float
    view: str
    train: Path
    test: Path
    train_sha256: str = ""
    test_sha256: str = ""

    @property
    def label(self) -> str:
        return f"{dose_label(self.dose)}/{self.view}"


def simulation_manifest(phase_c_root: str | Path) -> SimulationManifest:
    """The phase C manifest; a missing one says which command writes it."""
    path = Path(phase_c_root) / SIMULATION_MANIFEST
    try:
        return read_manifest(SimulationManifest, path)
    except FileNotFoundError:
        raise MissingDatasetError(
            f"no phase C manifest at {path}; run `ptypinn simulate` first"
        ) from None


def phase_c_entries(
    phase_c_root: str | Path, doses: Sequence[float] | None = None
) -> list[SimulationEntry]:
    """The dose entries of the phase C manifest (only those of ``doses``, in order, if given)."""
    path = Path(phase_c_root) / SIMULATION_MANIFEST
    entries = simulation_manifest(phase_c_root).doses
    incomplete = [entry.dose for entry in entries if not set(SPLITS) <= set(entry.files)]
    if incomplete:
        raise ManifestError(
            f"{path} is not a readable phase C manifest: dose(s) {incomplete} lack a train or "
            "test file record"
        )
    if doses is None:
        return entries
    found = {dose_label(entry.dose): entry for entry in entries}
    missing = [d for d in doses if dose_label(d) not in found]
    if missing:
        raise DatasetError(
            f"dose(s) {[float(d) for d in missing]} not in {path}; "
            f"it holds {[entry.dose for entry in entries]}"
        )
    return [found[dose_label(d)] for d in doses]


def listed_files(
    manifest: Path, kind: type[SimulationManifest] | type[OverlapManifest]
) -> set[str]:
    """Paths (relative to its folder) of the split files a phase C or D manifest lists; none
    when there is no readable manifest."""
    try:
        record = read_manifest(kind, manifest)
    except (OSError, DatasetError):
        return set()
    if isinstance(record, SimulationManifest):
        return {file.path for entry in record.doses for file in entry.files.values()}
    return {
        file.path for entry in record.doses for view in entry.views for file in view.files.values()
    }


def verified_file(root: Path, record: FileRecord, manifest: str) -> Path:
    """The file a manifest record names (relative to ``root``), checked against its SHA-256."""
    path = root / record.path
    if not path.is_file():
        raise MissingDatasetError(f"{path} is listed in {manifest} but missing")
    if sha256_file(path) != record.sha256:
        raise DatasetError(
            f"{path} changed since {manifest} was written (its SHA-256 differs); "
            "run that phase again"
        )
    return path


def _phase_d_views(
    phase_d_root: Path, phase_c_root: Path
) -> tuple[dict[tuple[str, str], ViewRecord], list[NotFormed], str | None]:
    """The view entries of the phase D manifest by (dose folder, view), its not-formed list, and
    a reason none can be used (no manifest, or one made from another phase C), if any."""
    path = phase_d_root / OVERLAP_MANIFEST
    if not path.is_file():
        return {}, [], f"{MISSING}: no {OVERLAP_MANIFEST} in {phase_d_root}"
    manifest = read_manifest(OverlapManifest, path)
    views = {
        (dose_label(entry.dose), item.view): item
        for entry in manifest.doses
        for item in entry.views
    }
    if manifest.source_manifest.sha256 != sha256_file(phase_c_root / SIMULATION_MANIFEST):
        return (
            {},
            [],
            f"phase D data is stale: {path} was made from another phase C run; "
            "run `ptypinn overlap` again",
        )
    return views, manifest.not_formed, None


def missing_view(skip: SkipRecord) -> MissingDatasetError:
    """The error for a view the matrix needs and lacks when missing views are not allowed."""
    return MissingDatasetError(
        f"view {skip.view!r} at dose {skip.dose:g}: {skip.reason} "
        "(pass --allow-missing-phase-d to skip missing views)"
    )


def collect_datasets(
    phase_c_root: str | os.PathLike,
    phase_d_root: str | os.PathLike,
    views: Sequence[str],
    allow_missing_phase_d: bool = False,
    doses: Sequence[float] | None = None,
) -> tuple[list[DatasetEntry], list[SkipRecord]]:
    """Every (dose, view) dataset pair, in the phase C manifest's dose order, baseline first.

    ``doses`` defaults to every dose of the phase C manifest. A missing or changed baseline file
    is always an error; a missing overlap view is an error unless ``allow_missing_phase_d``.
    """
    phase_c_root, phase_d_root = Path(phase_c_root), Path(phase_d_root)
    entries: list[DatasetEntry] = []
    skips: list[SkipRecord] = []
    found, not_formed, unusable = (
        _phase_d_views(phase_d_root, phase_c_root) if views else ({}, [], None)
    )
    manifest = phase_d_root / OVERLAP_MANIFEST
    for dose_entry in phase_c_entries(phase_c_root, doses):
        dose, files = dose_entry.dose, dose_entry.files
        try:
            train, test = (
                verified_file(phase_c_root, files[split], SIMULATION_MANIFEST) for split in SPLITS
            )
        except DatasetError as error:
            raise type(error)(f"view {BASELINE!r} at dose {dose:g}: {error}") from None
        entries.append(
            DatasetEntry(dose, BASELINE, train, test, files["train"].sha256, files["test"].sha256)
        )
        for view in views:
            item = found.get((dose_label(dose), view))
            reason = unusable
            if reason is None and item is None:
                reason = f"{MISSING}: {manifest} has no view {view!r} at dose {dose:g}"
            elif reason is None and item is not None and not item.formed:
                why = [
                    event.reason
                    for event in not_formed
                    if event.view == view and dose_label(event.dose) == dose_label(dose)
                ]
                reason = f"view not formed in phase D: {why[0] if why else 'too few positions'}"
            if reason is None:
                assert item is not None  # a missing view has a reason
                try:
                    train, test = (
                        verified_file(phase_d_root, item.files[split], OVERLAP_MANIFEST)
                        for split in SPLITS
                    )
                    entries.append(
                        DatasetEntry(
                            dose,
                            view,
                            train,
                            test,
                            item.files["train"].sha256,
                            item.files["test"].sha256,
                        )
                    )
                    continue
                except MissingDatasetError as error:
                    reason = f"{MISSING}: {error}"
            skip = SkipRecord(dose=dose, view=view, reason=reason)
            if not allow_missing_phase_d:
                raise missing_view(skip)
            skips.append(skip)
    return entries, skips


class MatrixCell(Protocol):
    @property
    def dose(self) -> float: ...

    @property
    def view(self) -> str: ...


Cell = TypeVar("Cell", bound=MatrixCell)


def select(
    entries: Iterable[Cell],
    doses: Sequence[float] | None = None,
    views: Sequence[str] | None = None,
) -> list[Cell]:
    """Entries (datasets or jobs) that pass every given filter (``None`` or empty keeps all)."""
    dose_keys = {dose_key(d) for d in doses} if doses else None
    return [
        entry
        for entry in entries
        if (dose_keys is None or dose_key(entry.dose) in dose_keys)
        and (not views or entry.view in views)
    ]
