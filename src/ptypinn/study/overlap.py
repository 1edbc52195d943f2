"""Overlap views (phase D): thin each phase C scan to a minimum spacing and measure its overlap.

A view with target overlap fraction ``f`` keeps a subset of the scan whose positions are all at
least ``S = (1 - f) N`` apart (:func:`select_min_spacing`: greedy, in a seeded random visiting
order). What the subset achieves is then measured (:func:`measure_overlap`) on the probe's
footprint, the region where ``|P|^2`` exceeds ``max |P|^2 / e^2``, treated as a disc of equal
area:

* overlap fraction: the area shared by two such discs a distance ``d`` apart, over one disc's
  area (:func:`disc_overlap_fraction`), averaged over each position's K nearest neighbours and
  then over positions;
* coverage: the fraction of the field of view illuminated at least once by the footprint.

Output layout of :func:`run_overlap`::

    <root>/dose_<int>/<view>/train.npz
    <root>/dose_<int>/<view>/test.npz
    <root>/overlap_manifest.json
    <root>/metrics.json

A view is only written when both of its splits keep at least :func:`min_view_positions`
positions; otherwise neither split is written and the manifest lists it under ``not_formed``.
The folder always matches the manifest: files an earlier run listed that this run does not
write (other doses, other views) are removed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve
from scipy.spatial import cKDTree

from ptypinn import __version__
from ptypinn.io.artifacts import file_record, remove_files, sha256_file, write_json
from ptypinn.io.dataset import DatasetError, PtychoDataset, load_dataset, save_dataset
from ptypinn.study.design import DesignError, StudyDesign
from ptypinn.study.layout import (
    OVERLAP_MANIFEST,
    SIMULATION_MANIFEST,
    SPLITS,
    dose_label,
    split_path,
)
from ptypinn.study.matrix import BASELINE, listed_files, phase_c_entries

METRICS_FILE = "metrics.json"
COVERAGE_REGION = (
    "bounding box of the probe footprint placed at every position of the split's full phase C scan "
    "(positions rounded to pixels), clipped to the object"
)


def disc_overlap_fraction(distance: np.ndarray | float, diameter: float) -> np.ndarray:
    """Shared area of two discs of ``diameter`` whose centres are ``distance`` apart, over one disc's area.

    ``f(d) = [2 R^2 acos(d / 2R) - (d / 2) sqrt(4 R^2 - d^2)] / (pi R^2)`` for ``d < 2R``, else 0:
    ``f(0) = 1``, ``f(R) = 2/3 - sqrt(3) / (2 pi)``, ``f(2R) = 0``.
    """
    if not diameter > 0:
        raise ValueError(f"disc diameter must be positive, got {diameter}")
    radius = diameter / 2
    d = np.minimum(np.abs(np.asarray(distance, dtype=np.float64)), diameter)
    area = 2 * radius**2 * np.arccos(d / diameter) - (d / 2) * np.sqrt(diameter**2 - d**2)
    return area / (math.pi * radius**2)


def select_min_spacing(positions: np.ndarray, spacing: float, seed: int) -> np.ndarray:
    """Indices (ascending) of a subset whose positions are pairwise at least ``spacing`` apart.

    Positions are visited in the order of ``default_rng(seed).permutation(n)``; each is kept
    unless it lies closer than ``spacing`` to one already kept. Conflicting pairs come from a
    KD-tree, so the cost is set by the number of close pairs, not by ``n**2``.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 2:
        raise ValueError(f"positions must be an (n, 2) array of (x, y), got shape {positions.shape}")
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


def probe_footprint(probe: np.ndarray) -> tuple[np.ndarray, float]:
    """Footprint mask (``|P|^2 > max |P|^2 / e^2``) and its equivalent-disc diameter ``2 sqrt(area / pi)``."""
    intensity = np.abs(np.asarray(probe)) ** 2
    peak = float(intensity.max()) if intensity.size else 0.0
    if not peak > 0:
        raise ValueError("the probe is zero everywhere: it has no footprint")
    mask = intensity > peak / math.e**2
    return mask, 2 * math.sqrt(float(mask.sum()) / math.pi)


def scan_window(positions: np.ndarray, mask: np.ndarray, object_shape: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """``(row0, row1, col0, col1)`` (exclusive ends): bounding box of the footprint ``mask`` placed
    at every (rounded) position, clipped to ``object_shape`` when it is given."""
    pixels = np.rint(np.asarray(positions, dtype=np.float64)).astype(np.int64)
    half = mask.shape[0] // 2
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    row0, col0 = int(pixels[:, 1].min() + rows[0]) - half, int(pixels[:, 0].min() + cols[0]) - half
    row1, col1 = int(pixels[:, 1].max() + rows[-1]) - half + 1, int(pixels[:, 0].max() + cols[-1]) - half + 1
    if object_shape is not None:
        row0, col0 = max(row0, 0), max(col0, 0)
        row1, col1 = min(row1, object_shape[0]), min(col1, object_shape[1])
    return row0, row1, col0, col1


def illuminated(positions: np.ndarray, mask: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """Boolean map of ``window`` (rows, cols): pixels inside the footprint ``mask`` at some position.

    Mask pixel ``(r, c)`` at position ``(x, y)`` lands on object pixel
    ``(round(y) + r - N/2, round(x) + c - N/2)``, as in :func:`ptypinn.physics.forward.extract_patches`.
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
    target_fraction: float | None,
    field_of_view: tuple[int, int, int, int] | None = None,
) -> dict:
    """Overlap, spacing and coverage of a scan (JSON types only).

    ``measured_fraction``: mean over positions of the disc-overlap fraction averaged over each
    position's ``neighbor_count`` nearest other positions (all of them when there are fewer);
    ``nearest_fraction``: the same for the nearest neighbour alone.
    ``coverage``: fraction of ``field_of_view`` (``(row0, row1, col0, col1)``; default
    :func:`scan_window` of ``positions``) illuminated at least once by the probe footprint.
    Spacing and fraction are ``None`` for a single position, everything but the count for none.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    mask, diameter = probe_footprint(probe)
    count = positions.shape[0]
    result = {
        "target_fraction": None if target_fraction is None else float(target_fraction),
        "measured_fraction": None,
        "nearest_fraction": None,
        "mean_nn_spacing_px": None,
        "coverage": None,
        "probe_diameter_px": diameter,
        "count": int(count),
    }
    if count == 0:
        return result
    if count > 1:
        neighbours = min(int(neighbor_count), count - 1)
        distances, _ = cKDTree(positions).query(positions, k=neighbours + 1)
        distances = distances[:, 1:]  # the nearest is the position itself (distance 0)
        fractions = disc_overlap_fraction(distances, diameter)
        result["measured_fraction"] = float(fractions.mean())
        result["nearest_fraction"] = float(fractions[:, 0].mean())
        result["mean_nn_spacing_px"] = float(distances[:, 0].mean())
    window = field_of_view if field_of_view is not None else scan_window(positions, mask, object_shape)
    result["coverage"] = float(illuminated(positions, mask, window).mean())
    return result


def min_view_positions(design: StudyDesign) -> int:
    """Fewest positions a view split must keep: ``C`` of the design's largest gridsize."""
    return max(design.gridsizes) ** 2


def _object_shape(dataset: PtychoDataset) -> tuple[int, int] | None:
    return None if dataset.obj is None else dataset.obj.shape


def _load_source(phase_c_root: Path, record: dict, design: StudyDesign) -> PtychoDataset:
    """A phase C split, checked against its manifest hash and the design's N."""
    path = phase_c_root / record["path"]
    dataset = load_dataset(path)
    if sha256_file(path) != record["sha256"]:
        raise DatasetError(f"{path} changed since phase C wrote it (SHA-256 differs from {SIMULATION_MANIFEST})")
    if dataset.patch_size != design.patch_size:
        raise DesignError(
            f"design {design.name!r} has N={design.patch_size} but {path} holds {dataset.patch_size}x{dataset.patch_size} patterns; "
            "use the design phase C was run with"
        )
    return dataset


def _remove_view(folder: Path) -> None:
    """Delete a view's split files left by an earlier run, so the folder matches the manifest."""
    for split in SPLITS:
        (folder / f"{split}.npz").unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _form_view(
    design: StudyDesign, name: str, dose_entry: dict, sources: dict, windows: dict, root: Path
) -> tuple[dict, list[dict], list[dict]]:
    """Select, write and measure one view of one dose: (manifest entry, not-formed items, metric rows)."""
    dose, seed, minimum = float(dose_entry["dose"]), design.seeds.subsampling, min_view_positions(design)
    fraction, spacing = design.view(name).fraction, design.spacing(name)
    kept = {split: select_min_spacing(sources[split].positions, spacing, seed) for split in SPLITS}
    counts = {split: {"kept": int(kept[split].size), "rejected": int(sources[split].count - kept[split].size)} for split in SPLITS}
    entry = {"view": name, "target_fraction": fraction, "spacing_px": spacing, "counts": counts}
    short = [split for split in SPLITS if kept[split].size < minimum]
    if short:
        _remove_view(root / dose_label(dose) / name)
        not_formed = [
            {
                "dose": dose,
                "view": name,
                "split": split,
                "count": int(kept[split].size),
                "reason": (
                    f"kept {kept[split].size} of {sources[split].count} positions at spacing {spacing:g} px, fewer than the minimum {minimum}"
                    if split in short
                    else f"not written: the {', '.join(short)} split of this view has too few positions"
                ),
            }
            for split in SPLITS
        ]
        return {**entry, "formed": False}, not_formed, []
    files, fractions, metrics = {}, {}, []
    for split in SPLITS:
        source, record = sources[split], dose_entry["files"][split]
        subset = source.subset(
            kept[split],
            producer="ptypinn overlap",
            phase="D",
            ptypinn_version=__version__,
            view=name,
            target_fraction=fraction,
            spacing_px=spacing,
            selection_seed=seed,
            positions_kept=counts[split]["kept"],
            positions_rejected=counts[split]["rejected"],
            overlap_source={"path": record["path"], "sha256": record["sha256"]},
        )
        files[split] = file_record(save_dataset(split_path(root, dose, split, name), subset), root)
        measured = measure_overlap(subset.positions, subset.probe, _object_shape(source), design.neighbor_count, fraction, windows[split])
        metrics.append({"dose": dose, "view": name, "split": split, **measured})
        fractions[split] = measured["measured_fraction"]
    return {**entry, "formed": True, "measured_fraction": fractions, "files": files}, [], metrics


def run_overlap(
    design: StudyDesign,
    phase_c_root: str | os.PathLike,
    output_root: str | os.PathLike,
    doses: list[float] | None = None,
    views: list[str] | None = None,
) -> dict:
    """Phase D: every view of every phase C dose, written per split, with manifest and metrics.

    Selection uses ``design.seeds.subsampling`` on each split separately. The full phase C scan
    of each split is measured too, as view ``baseline`` (no target, no files written); its
    footprint bounding box is the coverage region of every view of that split.
    """
    source_root, root = Path(phase_c_root), Path(output_root)
    names = [view.name for view in design.views] if views is None else list(views)
    unknown = [name for name in names if name not in {view.name for view in design.views}]
    if unknown:
        raise DesignError(f"unknown view(s) {unknown}; the design has {[view.name for view in design.views]}")
    entries, not_formed, metrics = [], [], []
    earlier = listed_files(root / OVERLAP_MANIFEST)
    for dose_entry in phase_c_entries(source_root, doses):
        dose = float(dose_entry["dose"])
        sources = {split: _load_source(source_root, dose_entry["files"][split], design) for split in SPLITS}
        windows = {}
        for split, dataset in sources.items():
            windows[split] = scan_window(dataset.positions, probe_footprint(dataset.probe)[0], _object_shape(dataset))
            baseline = measure_overlap(dataset.positions, dataset.probe, _object_shape(dataset), design.neighbor_count, None, windows[split])
            metrics.append({"dose": dose, "view": BASELINE, "split": split, **baseline})
        view_entries = []
        for name in names:
            entry, missing, rows = _form_view(design, name, dose_entry, sources, windows, root)
            view_entries.append(entry)
            not_formed += missing
            metrics += rows
        entries.append({"dose": dose, "folder": dose_label(dose), "views": view_entries})
    manifest = {
        "phase": "D",
        "ptypinn_version": __version__,
        "design": design.name,
        "seeds": design.seeds.model_dump(mode="json"),
        "patch_size": design.patch_size,
        "neighbor_count": design.neighbor_count,
        "min_view_positions": min_view_positions(design),
        "selection": "greedy minimum spacing S = (1 - f) N, positions visited in default_rng(seeds.subsampling).permutation order, per split",
        "coverage_region": COVERAGE_REGION,
        "source_manifest": file_record(source_root / SIMULATION_MANIFEST, source_root),
        "doses": entries,
        "not_formed": not_formed,
    }
    write_json(root / METRICS_FILE, metrics)
    write_json(root / OVERLAP_MANIFEST, manifest)
    remove_files(root, earlier - listed_files(root / OVERLAP_MANIFEST))
    return manifest
