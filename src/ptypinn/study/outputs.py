"""A reconstruction's files: ``reconstruction.npz`` (the one reconstruction NPZ) and its figure.

Every method's reconstruction is saved the same way (:func:`save_reconstruction`): the NPZ
through :func:`ptypinn.io.reconstruction.write_reconstruction`, and ``reconstruction.png``
showing amplitude and phase of the reconstruction (aligned to the ground truth, beside it,
when there is one), cropped to the rectangle of probe centres: outside it pixels are weakly
constrained and drown the colour scale. The whole object is shown when that rectangle is too
thin to align on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ptypinn.analysis.metrics import align, centre_box, region_box
from ptypinn.analysis.report import Panel, reconstruction_grid
from ptypinn.io.reconstruction import Reconstruction, write_reconstruction
from ptypinn.study.layout import FIGURE_FILE, RECONSTRUCTION_FILE

MIN_FIGURE_SIDE = 16  # px: the smallest rectangle of probe centres the figure aligns and crops to


def figure_panels(
    rec: Reconstruction, truth: np.ndarray | None, dose: float, view: str, label: str
) -> list[Panel]:
    """The panels of a reconstruction's figure (module docstring)."""
    region = centre_box(rec.positions_px, rec.obj.shape)
    # One position (or centres within a pixel) spans no rectangle: show the whole object.
    rows, cols = region_box(region) if region.any() else (slice(0, 0), slice(0, 0))
    if min(rows.stop - rows.start, cols.stop - cols.start) < MIN_FIGURE_SIDE:
        rows = cols = slice(None)
    if truth is None or truth.shape != rec.obj.shape:
        return [Panel(dose, view, label, rec.obj[rows, cols])]
    if rows != slice(None):
        aligned, _ = align(rec.obj, truth, region)
        label = f"{label}, aligned"
    else:
        aligned = rec.obj
    return [
        Panel(dose, view, "ground truth", truth[rows, cols]),
        Panel(dose, view, label, aligned[rows, cols]),
    ]


def save_reconstruction(
    folder: str | Path,
    rec: Reconstruction,
    truth: np.ndarray | None = None,
    dose: float = 0.0,
    view: str = "",
    label: str | None = None,
    title: str | None = None,
) -> tuple[Path, Path]:
    """Write ``<folder>/reconstruction.npz`` and ``<folder>/reconstruction.png``.

    ``truth`` only feeds the figure; ``label`` names the method in it (default: ``rec.method``).
    """
    folder = Path(folder)
    panels = figure_panels(rec, truth, dose, view, label or rec.method)  # may fail: before writing
    npz = write_reconstruction(folder / RECONSTRUCTION_FILE, rec)
    figure = reconstruction_grid(panels, dose, view, folder / FIGURE_FILE, title=title)
    return npz, figure
