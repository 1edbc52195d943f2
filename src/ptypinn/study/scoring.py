"""Score any reconstruction file against a dataset's ground truth (``ptypinn score``).

The reconstruction is our reconstruction NPZ (PtychoPINN or iterative) or a ptychodus product
(HDF5), so any tool's output is scored exactly as the study scores its own methods: on the
truth's illuminated region (:func:`scored_region`), after the bounded
alignment of :func:`ptypinn.analysis.metrics.align`; so are a run's intermediate objects
(:func:`quality_curve`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ptypinn.analysis.metrics import align, score, ssim
from ptypinn.io.dataset import DatasetError, PtychoDataset
from ptypinn.io.formats import FileFormat, format_of, read_file
from ptypinn.io.hdf5 import FormatError
from ptypinn.io.product import Product
from ptypinn.io.reconstruction import Snapshot
from ptypinn.physics.geometry import dataset_geometry
from ptypinn.physics.scan import illuminated, probe_footprint
from ptypinn.study.design import MetricsConfig
from ptypinn.study.records import CurvePoint

PIXEL_TOLERANCE = 1e-3  # relative difference of object pixel sizes treated as equal
SCORED_REGION_RULE = (
    "Scores are taken after alignment (a sub-pixel shift bounded by {bound:g} px per axis, a "
    "linear phase ramp and a complex gain, fitted jointly by least squares; nothing wraps around) "
    "on the illuminated test region: the pixels where the probe intensity exceeds 1/e² of its "
    "peak at some position of the scored (test) scan. SSIM is the mean of the SSIM map (7-px "
    "window) over those pixels; PSNR (on the truth's data range there) and MAE use the same "
    "pixels. MS-SSIM and FRC need a full rectangle: they are computed on the largest square lying "
    "wholly inside the illuminated region. A value that cannot be measured is n/a, with the "
    "reason: a square too small for two MS-SSIM scales or for FRC (16 px), an MS-SSIM scale "
    "whose contrast-structure term is negative, an FRC below its threshold within the first 3 "
    "rings (where chance correlation passes 0.5) or never below it up to Nyquist. FRC50 is in "
    "cycles/pixel."
)


def scored_region(dataset: PtychoDataset) -> np.ndarray:
    """Pixels of the object grid illuminated (|P|² above 1/e² of its peak) at some scan position."""
    mask, _ = probe_footprint(dataset.probe)
    assert dataset.obj is not None  # callers score only data with a ground truth
    height, width = dataset.obj.shape
    return illuminated(dataset.positions, mask, (0, height, 0, width))


def load_reconstruction(path: str | os.PathLike, file_format: FileFormat | None = None) -> Product:
    """The reconstruction in ``path`` (reconstruction NPZ or ptychodus product)."""
    content = read_file(path, format_of(path, file_format))
    if isinstance(content, PtychoDataset):
        raise FormatError(f"{path} holds a dataset (diffraction patterns), not a reconstruction")
    return content


def load_truth(path: str | os.PathLike, file_format: FileFormat | None = None) -> PtychoDataset:
    """The dataset in ``path`` (canonical NPZ or CXI); it must hold the true object."""
    content = read_file(path, format_of(path, file_format))
    if not isinstance(content, PtychoDataset):
        raise FormatError(
            f"{path} holds a reconstruction, not a dataset with its scan and true object"
        )
    if content.obj is None:
        raise DatasetError(f"{path} has no objectGuess: there is no ground truth to score against")
    return content


def on_truth_grid(product: Product, truth: PtychoDataset) -> np.ndarray:
    """The reconstructed object placed on the truth's object grid (zero where it does not reach).

    Both grids are put in the world frame by their geometry; the reconstruction's pixel (0, 0)
    lands on the nearest truth pixel (the sub-pixel rest is left to the alignment). The pixel
    sizes must agree.
    """
    geometry = dataset_geometry(truth.metadata, truth.patch_size)
    ours, theirs = np.asarray(geometry.object_pixel_size_m), np.asarray(product.pixel_size_m)
    if not np.allclose(theirs, ours, rtol=PIXEL_TOLERANCE, atol=0):
        raise FormatError(
            f"the reconstruction's object pixel {tuple(theirs)} m differs from the truth's "
            f"{tuple(ours)} m; resample it onto the truth's grid first"
        )
    assert truth.obj is not None  # load_truth refuses data without one
    corner = geometry.to_pixels(product.geometry().to_metres(np.zeros((1, 2))))[0]
    col, row = (int(v) for v in np.rint(corner))
    height, width = truth.obj.shape
    placed = np.zeros((height, width), dtype=np.complex128)
    rows = slice(max(row, 0), min(row + product.obj.shape[0], height))
    cols = slice(max(col, 0), min(col + product.obj.shape[1], width))
    if rows.start >= rows.stop or cols.start >= cols.stop:
        raise FormatError("the reconstruction's object does not overlap the truth's object grid")
    placed[rows, cols] = product.obj[
        rows.start - row : rows.stop - row, cols.start - col : cols.stop - col
    ]
    return placed


def score_object(obj: np.ndarray, truth: PtychoDataset, metrics: MetricsConfig) -> dict:
    """Every score of a reconstructed object (on ``truth``'s object grid) against the truth, the
    alignment applied and the rule for the region used, in JSON types (an undefined score is
    ``None`` with its reason under ``undefined``)."""
    if truth.obj is None:
        raise DatasetError("the truth has no objectGuess to score against")
    _, alignment, scores = score(
        obj, truth.obj, scored_region(truth), metrics.max_shift_px, metrics.ms_ssim_sigma
    )
    return {
        **scores.to_dict(),
        "alignment": alignment.to_dict(),
        "region_rule": SCORED_REGION_RULE.format(bound=metrics.max_shift_px),
    }


def score_file(
    reconstruction: str | os.PathLike,
    truth: str | os.PathLike,
    metrics: MetricsConfig,
    reconstruction_format: FileFormat | None = None,
    truth_format: FileFormat | None = None,
) -> dict:
    """:func:`score_object` for a reconstruction file (our NPZ or a ptychodus product) against a
    truth file."""
    product = load_reconstruction(reconstruction, reconstruction_format)
    dataset = load_truth(truth, truth_format)
    scores = score_object(on_truth_grid(product, dataset), dataset, metrics)
    return {"reconstruction": str(reconstruction), "truth": str(truth), **scores}


CURVE_RULE = (
    "Each engine keeps its object at the design's checkpoints (iterations, outside its clock); "
    "every kept object is scored after the run, in the job's own process, exactly as the final "
    "one is (its own alignment), so the curve's last point is the final score."
)


def quality_curve(
    snapshots: Sequence[Snapshot], truth: PtychoDataset, metrics: MetricsConfig, offset: float = 0.0
) -> list[CurvePoint]:
    """The time-to-quality curve of one run: each snapshot's phase SSIM on the scored region
    after its own alignment (:data:`CURVE_RULE`), at its seconds plus ``offset`` (a warm start's
    network time). One alignment per run, the final object's, would be cheaper but scores the
    earlier objects up to 0.17 lower (``benchmarks/results/time_to_quality.json``)."""
    if not snapshots:
        return []
    if truth.obj is None:
        raise DatasetError("the truth has no objectGuess to score against")
    reference = np.asarray(truth.obj, dtype=np.complex128)
    region = scored_region(truth)
    phase = np.angle(reference)

    def phase_ssim(obj: np.ndarray) -> float:
        aligned, _ = align(obj, reference, region, metrics.max_shift_px)
        return ssim(np.angle(aligned), phase, region)

    return [
        CurvePoint(
            iteration=snapshot.iteration,
            seconds=snapshot.wall_time_s + offset,
            phase_ssim=phase_ssim(snapshot.obj),
        )
        for snapshot in sorted(snapshots, key=lambda snapshot: snapshot.iteration)
    ]
