"""Where each study phase keeps its files, so every phase names them the same way."""

from __future__ import annotations

import os
from pathlib import Path

SIMULATION_MANIFEST = "simulation_manifest.json"
OVERLAP_MANIFEST = "overlap_manifest.json"
RECONSTRUCTION_MANIFEST = "reconstruction_manifest.json"
TRAINING_MANIFEST = "training_manifest.json"
INFERENCE_MANIFEST = "inference_manifest.json"
COMPARISON_MANIFEST = "comparison_manifest.json"
TRAINING_PREVIEW = "training_preview.json"  # a dry run's training manifest
SKIP_SUMMARY = "skip_summary.json"
RECONSTRUCTION_FILE = "reconstruction.npz"
FIGURE_FILE = "reconstruction.png"
SPLITS = ("train", "test")


def dose_key(dose: float) -> int:
    """A dose's identity: its whole photon count (two doses with one key are one dose)."""
    return int(round(dose))


def dose_label(dose: float) -> str:
    """Folder name of a dose: ``dose_1000`` for 1e3 photons per pattern."""
    return f"dose_{dose_key(dose)}"


def gridsize_label(gridsize: int) -> str:
    """``gs2``: how folders and tables name a gridsize."""
    return f"gs{gridsize}"


def split_path(root: str | Path, dose: float, split: str, view: str | None = None) -> Path:
    """``<root>/dose_<int>[/<view>]/<split>.npz``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(root) / dose_label(dose)
    if view is not None:
        folder = folder / view
    return folder / f"{split}.npz"


def training_folder(
    root: str | Path, dose: float, view: str, gridsize: int, method: str = "pinn"
) -> Path:
    """``<root>/dose_<int>/<view>/<model>``: where a training job writes bundle and logs
    (``<model>`` is :func:`model_folder`: ``gs2``, ``supervised_gs1``)."""
    return Path(root) / dose_label(dose) / view / model_folder(method, gridsize)


def job_folder(
    root: str | os.PathLike, dose: float, view: str, split: str, method: str | None = None
) -> Path:
    """``<root>/dose_<int>/<view>/<split>[/<method>]``: where one (dose, view, split) job, or one
    method's job on it, writes its outputs."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(root) / dose_label(dose) / view / split
    return folder if method is None else folder / method


def model_folder(method: str, gridsize: int) -> str:
    """Folder of one trained model inside a view's phase E folder: ``gs2``, ``supervised_gs1``."""
    label = gridsize_label(gridsize)
    return label if method == "pinn" else f"{method}_{label}"
