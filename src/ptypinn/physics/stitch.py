"""Stitching: shift-and-add object patches into one image, normalised by the summed weights.

Each patch (N × N, centred on its scan position as in :func:`physics.extract_patches`) is moved
by the fractional part of its position with the same bilinear :func:`physics.translate` used
everywhere, then added at the integer part. The image is ``Σ T(w·patch) / Σ T(w)`` wherever the
summed weight exceeds ``min_weight``, and zero elsewhere.

A far-field amplitude cannot see a patch's absolute phase: ``|F(P·O·e^{iθ})| = |F(P·O)|``. A
network predicting patches one by one may therefore give each its own constant phase offset,
and averaging such patches destroys the image. :func:`synchronise_phases` removes those
offsets before stitching: patches are visited outward from the first one along nearest
neighbours, each rotated to agree with the image built so far where they overlap, then every
offset is refined against the full image. Patches with no overlap keep their own phase.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order
from scipy.spatial import cKDTree

from ptypinn.physics.forward import extract_patches, translate


class _Canvas:
    """Running numerator and weight sums of a stitched image (padded so every patch fits)."""

    def __init__(self, shape: tuple[int, int], patch_size: int) -> None:
        self.shape, self.n = shape, patch_size
        self.pad = patch_size + 1
        padded = (shape[0] + 2 * self.pad, shape[1] + 2 * self.pad)
        self.numerator = np.zeros(padded, dtype=np.complex128)
        self.total = np.zeros(padded, dtype=np.float64)

    def window(self, x: int, y: int) -> tuple[slice, slice] | None:
        top, left = y - self.n // 2 + self.pad, x - self.n // 2 + self.pad
        if (
            top < 0
            or left < 0
            or top + self.n > self.total.shape[0]
            or left + self.n > self.total.shape[1]
        ):
            return None
        return slice(top, top + self.n), slice(left, left + self.n)

    def add(
        self, x: int, y: int, value: np.ndarray, weight: np.ndarray, rotation: complex = 1.0
    ) -> None:
        window = self.window(x, y)
        if window is not None:
            self.numerator[window] += rotation * value
            self.total[window] += weight

    def image(self, min_weight: float) -> tuple[np.ndarray, np.ndarray]:
        crop = (
            slice(self.pad, self.pad + self.shape[0]),
            slice(self.pad, self.pad + self.shape[1]),
        )
        numerator, total = self.numerator[crop], self.total[crop]
        covered = total > min_weight
        image = np.zeros(self.shape, dtype=np.complex64)
        image[covered] = numerator[covered] / total[covered]
        return image, total.astype(np.float32)


def _placed(patches: np.ndarray, positions: np.ndarray, weight: np.ndarray, chunk: int):
    """Yield (integer x, integer y, weighted patch, weight) moved by each position's fraction."""
    n = patches.shape[-1]
    whole = np.floor(positions).astype(np.int64)
    fraction = torch.from_numpy(positions - whole)
    weight_t = torch.from_numpy(np.asarray(weight, dtype=np.float32))
    for start in range(0, patches.shape[0], chunk):
        part = slice(start, start + chunk)
        block = torch.from_numpy(np.asarray(patches[part], dtype=np.complex64))
        moved = translate(block * weight_t, fraction[part]).numpy()
        moved_weight = translate(
            weight_t.expand(block.shape[0], n, n).contiguous(), fraction[part]
        ).numpy()
        yield from zip(whole[part, 0], whole[part, 1], moved, moved_weight, strict=True)


def _accumulate(
    placed: list, shape: tuple[int, int], patch_size: int, rotation: np.ndarray | None = None
) -> _Canvas:
    canvas = _Canvas(shape, patch_size)
    for index, (x, y, value, w) in enumerate(placed):
        canvas.add(x, y, value, w, 1.0 if rotation is None else rotation[index])
    return canvas


def stitch(
    patches: np.ndarray,
    positions: np.ndarray,
    shape: tuple[int, int],
    weight: np.ndarray,
    min_weight: float = 1e-3,
    chunk: int = 256,
    synchronise: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Stitch ``patches`` (n, N, N) complex at ``positions`` (n, 2) as (x, y) onto a ``shape`` grid.

    ``weight`` (N, N) says how much each patch pixel counts (e.g. |P|² on the predicted window).
    With ``synchronise`` the patches' constant phase offsets are first made consistent (as
    :func:`synchronise_phases` does), reusing the same translated patches.
    Returns the complex image and the summed weight map; patch pixels off the grid are dropped.
    """
    placed = list(_placed(patches, positions, weight, chunk))
    rotation = _phase_rotations(placed, patches, positions, shape, weight) if synchronise else None
    return _accumulate(placed, shape, patches.shape[-1], rotation).image(min_weight)


def _visiting_order(positions: np.ndarray) -> list[int]:
    """Breadth-first over the nearest-neighbour graph from the first position; unreachable ones
    last."""
    count = positions.shape[0]
    neighbours = cKDTree(positions).query(positions, k=min(count, 9))[1]
    rows = np.repeat(np.arange(count), neighbours.shape[1])
    graph = coo_matrix(
        (np.ones(rows.size), (rows, neighbours.ravel())), shape=(count, count)
    ).tocsr()
    order = [
        int(i) for i in breadth_first_order(graph, 0, directed=False, return_predecessors=False)
    ]
    seen = set(order)
    return order + [i for i in range(count) if i not in seen]


def _unit(overlap: np.ndarray | complex, fallback: np.ndarray | complex) -> np.ndarray:
    """The phase factor of each ``overlap``; ``fallback`` where there is no overlap to measure
    it."""
    size = np.abs(overlap)
    measured = size > 0
    return np.where(measured, overlap / np.where(measured, size, 1), fallback)


def _phase_rotations(
    placed: list,
    patches: np.ndarray,
    positions: np.ndarray,
    shape: tuple[int, int],
    weight: np.ndarray,
    refinements: int = 2,
) -> np.ndarray:
    """Unit factors that make the patches' constant phases agree (see the module docstring)."""
    count, n = patches.shape[0], patches.shape[-1]
    rotation = np.ones(count, dtype=np.complex64)
    if count < 2:
        return rotation
    canvas = _Canvas(shape, n)
    for index in _visiting_order(positions):
        x, y, value, w = placed[index]
        window = canvas.window(x, y)
        if window is None:
            continue
        # Σ conj(w·p) · (Σ w·p of the patches placed so far)
        rotation[index] = _unit(np.vdot(value, canvas.numerator[window]), rotation[index])
        canvas.add(x, y, value, w, rotation[index])
    for refinement in range(refinements):
        if refinement:
            canvas = _accumulate(placed, shape, n, rotation)
        image, _ = canvas.image(1e-3)
        reference = extract_patches(torch.from_numpy(image), torch.from_numpy(positions), n).numpy()
        # Σ conj(w·p) · reference, for every patch at once
        overlap = np.einsum("nij,nij->n", np.conj(patches * weight), reference)
        rotation = _unit(overlap, rotation).astype(np.complex64)
    return rotation


def synchronise_phases(
    patches: np.ndarray,
    positions: np.ndarray,
    shape: tuple[int, int],
    weight: np.ndarray,
    refinements: int = 2,
) -> np.ndarray:
    """``patches`` with their constant phase offsets made mutually consistent (see module
    docstring)."""
    patches = np.asarray(patches, dtype=np.complex64)
    placed = list(_placed(patches, positions, weight, chunk=256))
    return (
        patches
        * _phase_rotations(placed, patches, positions, shape, weight, refinements)[:, None, None]
    )
