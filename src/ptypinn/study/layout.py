"""Where each study phase keeps its files, so every phase names them the same way."""

from __future__ import annotations

from pathlib import Path

SIMULATION_MANIFEST = "simulation_manifest.json"
OVERLAP_MANIFEST = "overlap_manifest.json"
RECONSTRUCTION_MANIFEST = "reconstruction_manifest.json"
TRAINING_MANIFEST = "training_manifest.json"
COMPARISON_MANIFEST = "comparison_manifest.json"
RECONSTRUCTION_FILE = "reconstruction.npz"
FIGURE_FILE = "reconstruction.png"
SPLITS = ("train", "test")


def dose_label(dose: float) -> str:
    """Folder name of a dose: ``dose_1000`` for 1e3 photons per pattern."""
    return f"dose_{int(round(dose))}"


def split_path(root: str | Path, dose: float, split: str, view: str | None = None) -> Path:
    """``<root>/dose_<int>[/<view>]/<split>.npz``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(root) / dose_label(dose)
    if view is not None:
        folder = folder / view
    return folder / f"{split}.npz"


def training_folder(root: str | Path, dose: float, view: str, gridsize: int) -> Path:
    """``<root>/dose_<int>/<view>/gs<gridsize>``: where a training job writes bundle and logs."""
    return Path(root) / dose_label(dose) / view / f"gs{gridsize}"


def job_folder(root: str | Path, dose: float, view: str, split: str) -> Path:
    """``<root>/dose_<int>/<view>/<split>``: where one (dose, view, split) job writes its outputs."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return Path(root) / dose_label(dose) / view / split
