"""Data for the PtychoPINN benchmarks: phases C and D of a design, one view's two splits, and the
scores every benchmark reports for an image of a test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ptypinn.analysis.metrics import score
from ptypinn.io.dataset import PtychoDataset
from ptypinn.study.design import StudyDesign
from ptypinn.study.layout import split_path
from ptypinn.study.overlap import run_overlap
from ptypinn.study.scoring import scored_region
from ptypinn.study.simulate import run_simulation


def view_splits(design: StudyDesign, view: str, dose: float, work: Path) -> tuple[Path, Path]:
    """Simulate ``design`` (phase C) and form its views (phase D) under ``work``; the train and
    test NPZ of ``view`` (``baseline``: the full scan) at ``dose``."""
    run_simulation(design, work / "c")
    run_overlap(design, work / "c", work / "d")
    root, folder = (work / "c", None) if view == "baseline" else (work / "d", view)
    return split_path(root, dose, "train", folder), split_path(root, dose, "test", folder)


def test_scores(image: np.ndarray, test: PtychoDataset) -> dict[str, float | None]:
    """Phase and amplitude SSIM and phase FRC50 of ``image``, a reconstruction of ``test``'s
    object, by the study's scorer on the study's scored region."""
    values = score(image, test.obj, scored_region(test))[2].values
    return {
        "phase_ssim": values["phase"]["ssim"],
        "amplitude_ssim": values["amplitude"]["ssim"],
        "phase_frc50": values["phase"]["frc50"],
    }
