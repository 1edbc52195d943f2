"""The study matrix: which datasets exist for each dose and view, and which are skipped.

Training (phase E) and iterative reconstruction (phase F) both run one job per dose and view:

* ``baseline`` — the full phase C scan;
* every overlap view (``dense``, ``sparse``) — the phase D subset.

The design's ``gridsizes`` decide which models train on which dataset
(:func:`training_gridsizes`): the baseline at gridsize 1, every overlap view at each listed
gridsize above 1.

:func:`collect_datasets` enumerates them from the phase C and D roots. It only looks at paths:
it creates nothing. A missing dataset is an error naming the view and the file, unless missing
phase D views are allowed, in which case the view is skipped and a :class:`SkipEvent` records why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from ptypinn.io.dataset import DatasetError
from ptypinn.study.layout import dose_label, split_path

BASELINE = "baseline"
DEFAULT_VIEWS = ("dense", "sparse")


class MissingDatasetError(DatasetError):
    """A dataset the matrix needs is absent."""


def training_gridsizes(view: str, gridsizes: Sequence[int]) -> tuple[int, ...]:
    """Gridsizes the study trains on a view's data: the baseline (the full scan) at gridsize 1
    when the design lists 1, every overlap view at each listed gridsize above 1."""
    if view == BASELINE:
        return (1,) if 1 in gridsizes else ()
    return tuple(sorted(g for g in gridsizes if g > 1))


@dataclass(frozen=True)
class DatasetEntry:
    """The train and test files of one dose and view."""

    dose: float
    view: str
    train: Path
    test: Path

    @property
    def label(self) -> str:
        return f"{dose_label(self.dose)}/{self.view}"


@dataclass(frozen=True)
class SkipEvent:
    """A view left out of the matrix, and why."""

    dose: float
    view: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"dose": self.dose, "view": self.view, "reason": self.reason}


def discover_doses(phase_c_root: str | Path) -> list[float]:
    """Doses with a ``dose_<int>`` folder under the phase C root, ascending."""
    root = Path(phase_c_root)
    if not root.is_dir():
        raise MissingDatasetError(f"phase C root {root} does not exist; run `ptypinn simulate` first")
    doses = sorted(
        float(folder.name.removeprefix("dose_"))
        for folder in root.glob("dose_*")
        if folder.is_dir() and folder.name.removeprefix("dose_").isdigit()
    )
    if not doses:
        raise MissingDatasetError(f"phase C root {root} holds no dose_<int> folders; run `ptypinn simulate` first")
    return doses


def _missing(paths: Iterable[Path]) -> list[Path]:
    return [path for path in paths if not path.is_file()]


def collect_datasets(
    phase_c_root: str | Path,
    phase_d_root: str | Path,
    views: Sequence[str] = DEFAULT_VIEWS,
    allow_missing_phase_d: bool = False,
    doses: Sequence[float] | None = None,
) -> tuple[list[DatasetEntry], list[SkipEvent]]:
    """Every (dose, view) dataset pair, in dose order then baseline-first view order.

    ``doses`` defaults to those found under ``phase_c_root``. A missing baseline file is always
    an error; a missing overlap view is an error unless ``allow_missing_phase_d``.
    """
    doses = discover_doses(phase_c_root) if doses is None else [float(d) for d in doses]
    entries: list[DatasetEntry] = []
    skips: list[SkipEvent] = []
    for dose in doses:
        for view in (BASELINE, *views):
            root, folder = (phase_c_root, None) if view == BASELINE else (phase_d_root, view)
            train, test = (split_path(root, dose, split, folder) for split in ("train", "test"))
            missing = _missing((train, test))
            if not missing:
                entries.append(DatasetEntry(dose=dose, view=view, train=train, test=test))
                continue
            names = ", ".join(str(path) for path in missing)
            if view == BASELINE or not allow_missing_phase_d:
                hint = "" if view == BASELINE else " (pass --allow-missing-phase-d to skip missing views)"
                raise MissingDatasetError(f"view {view!r} at dose {dose:g} is missing {names}{hint}")
            skips.append(SkipEvent(dose=dose, view=view, reason=f"missing phase D data: {names}"))
    return entries, skips


class MatrixCell(Protocol):
    dose: float
    view: str


Cell = TypeVar("Cell", bound=MatrixCell)


def select(
    entries: Iterable[Cell],
    doses: Sequence[float] | None = None,
    views: Sequence[str] | None = None,
) -> list[Cell]:
    """Entries (datasets or jobs) that pass every given filter (``None`` or empty keeps all)."""
    dose_keys = {round(d) for d in doses} if doses else None
    return [
        entry
        for entry in entries
        if (dose_keys is None or round(entry.dose) in dose_keys)
        and (not views or entry.view in views)
    ]
