"""Scan geometry: probe footprints, disc overlap, minimum-spacing subsets and coverage.

The probe's *footprint* is the region where ``|P|^2`` exceeds ``max |P|^2 / e^2``; it is
treated as a disc of equal area, whose diameter ``D`` is the length scale of overlap
(:func:`probe_footprint`). Two such discs a distance ``d`` apart share the fraction
``f(d)`` of one disc's area (:func:`disc_overlap_fraction`); :func:`disc_overlap_distance` is
its inverse, the spacing at which neighbours overlap by a given fraction.

Overlap of a scan (:func:`measure_overlap`), two measures:

* nearest-neighbour overlap: ``f`` of each position's distance to its nearest neighbour,
  averaged over positions (what a spacing rule targets);
* K-nearest-neighbour overlap: ``f`` averaged over each position's K nearest neighbours,
  then over positions.

Coverage is the fraction of a field of view that the footprint illuminates at least once
(:func:`illuminated`). Positions are ``(x, y)`` in object pixels, as everywhere in ptypinn.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.signal import fftconvolve
from scipy.spatial import cKDTree


def disc_overlap_fraction(distance: np.ndarray | float, diameter: float) -> np.ndarray:
    """Shared area of two discs of ``diameter`` whose centres are ``distance`` apart, over one
    disc's area.

    ``f(d) = [2 R^2 acos(d / 2R) - (d / 2) sqrt(4 R^2 - d^2)] / (pi R^2)`` for ``d < 2R``,
    else 0: ``f(0) = 1``, ``f(R) = 2/3 - sqrt(3) / (2 pi)``, ``f(2R) = 0``.
    """
    if not diameter > 0:
        raise ValueError(f"disc diameter must be positive, got {diameter}")
    radius = diameter / 2
    d = np.minimum(np.abs(np.asarray(distance, dtype=np.float64)), diameter)
    area = 2 * radius**2 * np.arccos(d / diameter) - (d / 2) * np.sqrt(diameter**2 - d**2)
    return area / (math.pi * radius**2)


def disc_overlap_distance(fraction: float, diameter: float) -> float:
    """The centre distance ``d`` in ``[0, diameter]`` at which :func:`disc_overlap_fraction`
    equals ``fraction`` (``f`` falls strictly from 1 at ``d = 0`` to 0 at ``d = diameter``).

    For example ``f = 0.7`` gives ``d = 0.238 D`` and ``f = 0.2`` gives ``d = 0.687 D``.
    """
    if not diameter > 0:
        raise ValueError(f"disc diameter must be positive, got {diameter}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"overlap fraction must be in [0, 1], got {fraction}")
    if fraction == 0.0:
        return float(diameter)
    if fraction == 1.0:
        return 0.0

    def excess(d: float) -> float:
        return float(disc_overlap_fraction(d, diameter)) - fraction

    return float(brentq(excess, 0.0, diameter, xtol=1e-12 * diameter))


def probe_footprint(probe: np.ndarray, threshold: float = math.e**-2) -> tuple[np.ndarray, float]:
    """Footprint mask (``|P|^2 > threshold · max |P|^2``, by default ``1/e^2``) and its
    equivalent-disc diameter ``2 sqrt(area / pi)`` in pixels."""
    if not 0 < threshold < 1:
        raise ValueError(f"the footprint threshold must be in (0, 1), got {threshold}")
    intensity = np.abs(np.asarray(probe)) ** 2
    peak = float(intensity.max()) if intensity.size else 0.0
    if not peak > 0:
        raise ValueError("the probe is zero everywhere: it has no footprint")
    mask = intensity > peak * threshold
    return mask, 2 * math.sqrt(float(mask.sum()) / math.pi)


def select_min_spacing(positions: np.ndarray, spacing: float, seed: int) -> np.ndarray:
    """Indices (ascending) of a subset whose positions are pairwise at least ``spacing`` apart.

    Positions are visited in the order of ``default_rng(seed).permutation(n)``; each is kept
    unless it lies closer than ``spacing`` to one already kept. Conflicting pairs come from a
    KD-tree, so the cost is set by the number of close pairs, not by ``n**2``.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 2:
        raise ValueError(
            f"positions must be an (n, 2) array of (x, y), got shape {positions.shape}"
        )
    if not spacing >= 0:
        raise ValueError(f"spacing must be >= 0 px, got {spacing}")
    count = positions.shape[0]
    pairs = cKDTree(positions).query_pairs(r=spacing, output_type="ndarray")
    delta = positions[pairs[:, 0]] - positions[pairs[:, 1]]
    pairs = pairs[np.hypot(delta[:, 0], delta[:, 1]) < spacing]  # the tree's radius is inclusive
    # Symmetric adjacency in CSR form: the conflicts of i are conflicts[starts[i]:starts[i + 1]].
    source = np.concatenate((pairs[:, 0], pairs[:, 1]))
    target = np.concatenate((pairs[:, 1], pairs[:, 0]))
    order = np.argsort(source, kind="stable")
    conflicts = target[order]
    starts = np.searchsorted(source[order], np.arange(count + 1))
    blocked = np.zeros(count, dtype=bool)
    kept = []
    for index in np.random.default_rng(seed).permutation(count):
        if not blocked[index]:
            kept.append(index)
            blocked[conflicts[starts[index] : starts[index + 1]]] = True
    return np.sort(np.asarray(kept, dtype=np.int64))


def scan_window(
    positions: np.ndarray, mask: np.ndarray, object_shape: tuple[int, int] | None
) -> tuple[int, int, int, int]:
    """``(row0, row1, col0, col1)`` (exclusive ends): bounding box of the footprint ``mask``
    placed at every (rounded) position, clipped to ``object_shape`` when it is given."""
    pixels = np.rint(np.asarray(positions, dtype=np.float64)).astype(np.int64)
    half = mask.shape[0] // 2
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    row0 = int(pixels[:, 1].min() + rows[0]) - half
    col0 = int(pixels[:, 0].min() + cols[0]) - half
    row1 = int(pixels[:, 1].max() + rows[-1]) - half + 1
    col1 = int(pixels[:, 0].max() + cols[-1]) - half + 1
    if object_shape is not None:
        row0, col0 = max(row0, 0), max(col0, 0)
        row1, col1 = min(row1, object_shape[0]), min(col1, object_shape[1])
    return row0, row1, col0, col1


def illuminated(
    positions: np.ndarray, mask: np.ndarray, window: tuple[int, int, int, int]
) -> np.ndarray:
    """Boolean map of ``window`` (rows, cols): pixels inside the footprint ``mask`` at some
    position.

    Mask pixel ``(r, c)`` at position ``(x, y)`` lands on object pixel
    ``(round(y) + r - N/2, round(x) + c - N/2)``, as in
    :func:`ptypinn.physics.forward.extract_patches`.
    """
    row0, row1, col0, col1 = window
    size = mask.shape[0]
    half = size // 2
    pixels = np.rint(np.asarray(positions, dtype=np.float64)).astype(np.int64)
    # Scatter the window origins of the positions onto a canvas padded by N on every side, then
    # stamp the mask at each with one FFT convolution.
    canvas = np.zeros((row1 - row0 + size, col1 - col0 + size))
    rows = pixels[:, 1] - half - row0 + size
    cols = pixels[:, 0] - half - col0 + size
    inside = (rows >= 0) & (rows < canvas.shape[0]) & (cols >= 0) & (cols < canvas.shape[1])
    np.add.at(canvas, (rows[inside], cols[inside]), 1.0)
    counts = fftconvolve(canvas, mask.astype(np.float64), mode="full")
    return counts[size : size + row1 - row0, size : size + col1 - col0] > 0.5


def measure_overlap(
    positions: np.ndarray,
    probe: np.ndarray,
    object_shape: tuple[int, int] | None,
    neighbor_count: int,
    field_of_view: tuple[int, int, int, int] | None = None,
) -> dict:
    """Overlap, spacing and coverage of a scan (JSON types only).

    ``nearest_overlap``: mean over positions of the disc-overlap fraction with the nearest
    other position; ``knn_overlap``: the same averaged over each position's
    ``neighbor_count`` nearest other positions (all of them when there are fewer);
    ``mean_nn_spacing_px``: mean distance to the nearest other position.
    ``coverage``: fraction of ``field_of_view`` (``(row0, row1, col0, col1)``; default
    :func:`scan_window` of ``positions``) illuminated at least once by the probe footprint.
    Overlaps and spacing are ``None`` for a single position, everything but the count and the
    diameter for none.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    mask, diameter = probe_footprint(probe)
    count = positions.shape[0]
    result = {
        "count": int(count),
        "probe_diameter_px": diameter,
        "neighbor_count": int(neighbor_count),
        "nearest_overlap": None,
        "knn_overlap": None,
        "mean_nn_spacing_px": None,
        "coverage": None,
    }
    if count == 0:
        return result
    if count > 1:
        neighbours = min(int(neighbor_count), count - 1)
        distances, _ = cKDTree(positions).query(positions, k=neighbours + 1)
        distances = distances[:, 1:]  # the nearest is the position itself (distance 0)
        fractions = disc_overlap_fraction(distances, diameter)
        result["nearest_overlap"] = float(fractions[:, 0].mean())
        result["knn_overlap"] = float(fractions.mean())
        result["mean_nn_spacing_px"] = float(distances[:, 0].mean())
    window = field_of_view
    if window is None:
        window = scan_window(positions, mask, object_shape)
    result["coverage"] = float(illuminated(positions, mask, window).mean())
    return result
