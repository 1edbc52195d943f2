"""Inference: predict an object patch for every scan position with a trained bundle and stitch them.

For gridsize ≥ 2 the groups seeded at each position are thinned to those covering a new
position; each passes through the generator and the overlap constraint, and every member's
re-extracted patch is stitched.
A reconstruction that holds NaN or infinite values is refused (:class:`NonFiniteError`).
Patches are stitched with weights ``|P|²`` on the window the generator predicts, after their
constant phase offsets (invisible to the far field) are made consistent (``stitch(synchronise=True)``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ptypinn.io.artifacts import write_npz
from ptypinn.io.dataset import DatasetError, PtychoDataset, metadata_entry
from ptypinn.physics.grouping import group_coordinates, make_groups
from ptypinn.study.layout import FIGURE_FILE, RECONSTRUCTION_FILE
from ptypinn.pinn.model import PtychoPINN, centre_mask, overlap_constraint
from ptypinn.io.progress import progress_bar
from ptypinn.analysis.report import Panel, reconstruction_grid
from ptypinn.physics.finite import require_finite
from ptypinn.physics.stitch import stitch

GRID_MARGIN = (
    4  # a stitching grid may span at most this many times the area of all patterns together
)


@dataclass
class Reconstruction:
    obj: np.ndarray
    weights: np.ndarray
    wall_time_s: float
    patterns: int

    @property
    def patterns_per_second(self) -> float:
        return self.patterns / self.wall_time_s if self.wall_time_s > 0 else float("inf")


def object_shape(dataset: PtychoDataset) -> tuple[int, int]:
    """The grid to stitch on: the reference object's, or just large enough for every patch.

    Without a reference object, positions so far apart that the grid would span more than
    ``GRID_MARGIN`` times the area of all patterns together are refused: they are not object
    pixels of one scan (and the grid would not fit in memory).
    """
    if dataset.obj is not None:
        return tuple(dataset.obj.shape)
    reach = dataset.patch_size // 2 + 2
    shape = (
        int(np.ceil(dataset.ycoords.max())) + reach,
        int(np.ceil(dataset.xcoords.max())) + reach,
    )
    size = dataset.patch_size
    if shape[0] * shape[1] > GRID_MARGIN * dataset.count * size**2:
        reach = f"({dataset.xcoords.max():.6g}, {dataset.ycoords.max():.6g}) px"
        raise DatasetError(
            f"the positions reach {reach}: a {shape[0]} x {shape[1]} px grid, far more than "
            f"{dataset.count} patterns of {size}x{size} px can cover; positions must be object "
            "pixels of one scan (or give the data an objectGuess that sets the grid)"
        )
    return shape


def stitch_weight(model: PtychoPINN) -> np.ndarray:
    probe = model.probe.detach().cpu()
    return (probe.abs().square() * centre_mask(probe.shape[-1])).numpy()


def covering_groups(groups: np.ndarray, count: int) -> np.ndarray:
    """The groups (in their order) that each bring at least one position not yet covered."""
    covered = np.zeros(count, dtype=bool)
    chosen = []
    for index, members in enumerate(groups):
        if not covered[members].all():
            covered[members] = True
            chosen.append(index)
    return groups[chosen]


@torch.inference_mode()
def predict_patches(model: PtychoPINN, dataset: PtychoDataset, neighbor_count: int, seed: int, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Object patches (m, N, N) and the index of the scan position each belongs to (m,).

    Gridsize 1: one patch per position. Gridsize ≥ 2: the groups seeded at each position, thinned
    to those that cover a new position; every member's constrained patch is kept, so a position
    may get several patches (the stitcher averages them).
    """
    model.eval()
    size = model.probe.shape[-1]
    if dataset.patch_size != size:
        held = f"{dataset.patch_size}x{dataset.patch_size}"
        raise DatasetError(f"the model was trained on {size}x{size} patterns; the data has {held}")
    positions = dataset.positions
    groups = make_groups(positions, model.gridsize, neighbor_count, n_groups=dataset.count, seed=seed)
    if model.gridsize > 1:
        groups = covering_groups(groups, dataset.count)
    _, offsets = group_coordinates(positions, groups)
    device = model.probe.device
    n = dataset.patch_size
    out = np.zeros((*groups.shape, n, n), dtype=np.complex64)
    with progress_bar("inference", len(groups)) as advance:
        for start in range(0, len(groups), batch_size):
            members = groups[start : start + batch_size]
            x = torch.from_numpy(np.ascontiguousarray(dataset.diffraction[members], dtype=np.float32)).to(device)
            d = torch.from_numpy(offsets[start : start + batch_size].astype(np.float32)).to(device)
            out[start : start + len(members)] = overlap_constraint(model.predict_patches(x), d).cpu().numpy()
            advance(len(members))
    return out.reshape(-1, n, n), groups.reshape(-1)


def reconstruct(model: PtychoPINN, dataset: PtychoDataset, neighbor_count: int = 7, seed: int = 123, batch_size: int = 128,
                synchronise: bool = True) -> Reconstruction:
    """Predict and stitch; ``synchronise`` first removes each patch's unobservable phase offset."""
    start = time.perf_counter()
    shape = object_shape(dataset)
    patches, owners = predict_patches(model, dataset, neighbor_count, seed, batch_size)
    positions = dataset.positions[owners]
    obj, weights = stitch(patches, positions, shape, stitch_weight(model), synchronise=synchronise)
    require_finite("the reconstructed object", obj)
    return Reconstruction(obj=obj, weights=weights, wall_time_s=time.perf_counter() - start, patterns=dataset.count)


def write_reconstruction(folder: str | Path, result: Reconstruction, dataset: PtychoDataset, metadata: dict, title: str = "PtychoPINN") -> tuple[Path, Path]:
    """``reconstruction.npz`` (object, weights, positions, probe, metadata) and ``reconstruction.png``."""
    folder = Path(folder)
    npz = write_npz(folder / RECONSTRUCTION_FILE, {
        "objectGuess": result.obj,
        "weights": result.weights,
        "xcoords": dataset.xcoords,
        "ycoords": dataset.ycoords,
        "probeGuess": dataset.probe,
        "metadata": metadata_entry({**metadata, "wall_time_s": result.wall_time_s}),
    })
    png = reconstruction_grid([Panel(0.0, "", title, result.obj)], 0.0, "", folder / FIGURE_FILE, title=title)
    return npz, png
