"""Data for the PtychoPINN benchmarks: phases C and D of a design, and one view's two splits."""

from __future__ import annotations

from pathlib import Path

from ptypinn.study.design import StudyDesign
from ptypinn.study.layout import split_path
from ptypinn.study.overlap import run_overlap
from ptypinn.study.simulate import run_simulation


def view_splits(design: StudyDesign, view: str, dose: float, work: Path) -> tuple[Path, Path]:
    """Simulate ``design`` (phase C) and form its views (phase D) under ``work``; the train and
    test NPZ of ``view`` (``baseline``: the full scan) at ``dose``."""
    run_simulation(design, work / "c")
    run_overlap(design, work / "c", work / "d")
    root, folder = (work / "c", None) if view == "baseline" else (work / "d", view)
    return split_path(root, dose, "train", folder), split_path(root, dose, "test", folder)
