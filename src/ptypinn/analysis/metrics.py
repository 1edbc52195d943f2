"""Scoring a reconstruction against ground truth.

A ptychographic reconstruction is only defined up to a global complex factor (amplitude gain and
phase offset), a linear phase ramp and, in practice, a small shift. :func:`align` removes all of
them, with the shift bounded (every method is given the true probe and positions, so a correct
reconstruction is off by a pixel or two) and never wrapped around the image.

Scores are taken on the scored region, a boolean mask (the illuminated pixels of a scan):

* SSIM is the mean of the SSIM map over the pixels of the mask; PSNR and MAE use those pixels;
* MS-SSIM and FRC need a full rectangle: they use the largest square wholly inside the mask
  (:func:`largest_square`).

A score that cannot be measured (a square too small for MS-SSIM or FRC, an MS-SSIM scale with
a negative contrast-structure term, an FRC that never crosses its threshold or crosses it within
the first rings, a PSNR of identical images) is
``None``, with the reason in :attr:`Scores.reasons`; it is never reported as a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy import fft, ndimage
from scipy.optimize import least_squares
from skimage.filters import window
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

MAX_SHIFT_PX = 3.0  # default bound of the alignment shift, px (each axis)
# Wang et al. (2003) MS-SSIM scale weights, finest first; fewer scales use the first ones,
# renormalised.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_KERNEL = 7
MS_SSIM_MIN_SCALES = 2
SSIM_WINDOW = 7  # skimage's default window side
FRC_MIN_SIDE = 16  # px: fewer than 8 rings cannot locate a cut-off
FRC_MIN_RINGS = 3  # a crossing within the first rings is no measurement (see _first_crossing)
CROP_MARGIN = 8  # px around the region kept when aligning, beyond the shift bound
MAX_FIT_EVALUATIONS = 30  # a matching reconstruction converges in about ten
FIT_TOLERANCE = 1e-5  # relative fall of the squared residual at which the fit stops


class Unmeasurable(ValueError):
    """A score that cannot be measured on the given images or region; the message says why."""


def region_box(region: np.ndarray) -> tuple[slice, slice]:
    """Bounding box of a non-empty boolean mask as a pair of slices."""
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    if rows.size == 0:
        raise ValueError("the scored region is empty")
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _grown(box: tuple[slice, ...], margin: int, shape: tuple[int, int]) -> tuple[slice, ...]:
    """``box`` grown by ``margin`` px on every side, clipped to an image of ``shape``."""
    return tuple(
        slice(max(s.start - margin, 0), min(s.stop + margin, size))
        for s, size in zip(box, shape, strict=True)
    )


def _fast_crop(box: tuple[slice, ...], shape: tuple[int, int]) -> tuple[slice, ...]:
    """``box`` grown at its far ends (within ``shape``) to fast FFT lengths (as are their
    doubles)."""
    return tuple(
        slice(s.start, min(s.start + fft.next_fast_len(s.stop - s.start), size))
        for s, size in zip(box, shape, strict=True)
    )


def centre_box(positions_px: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mask of the pixels inside the rectangle spanned by the (x, y) probe centres.

    Every pixel in it is illuminated by several positions of a scan that overlaps at all.
    """
    x, y = np.asarray(positions_px, dtype=np.float64).T
    region = np.zeros(shape, dtype=bool)
    rows = slice(max(int(np.ceil(y.min())), 0), int(np.floor(y.max())) + 1)
    cols = slice(max(int(np.ceil(x.min())), 0), int(np.floor(x.max())) + 1)
    region[rows, cols] = True
    return region


def largest_square(region: np.ndarray) -> tuple[slice, slice]:
    """The largest square wholly inside ``region`` (of several, the one nearest its centroid).

    A side fits when some window of that side holds only region pixels (summed-area table);
    fitting is monotone in the side, so the largest is found by bisection.
    """
    region = np.asarray(region, dtype=bool)
    if not region.any():
        raise ValueError("the scored region is empty")
    table = np.zeros((region.shape[0] + 1, region.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = region.cumsum(axis=0).cumsum(axis=1)

    def full_windows(side: int) -> np.ndarray:
        sums = (
            table[side:, side:]
            - table[:-side, side:]
            - table[side:, :-side]
            + table[:-side, :-side]
        )
        return sums == side * side

    low, high = 1, min(region.shape)  # a 1-px square always fits; ``high`` may not
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if full_windows(middle).any() else (low, middle - 1)
    rows, cols = np.nonzero(full_windows(low))
    centre_row, centre_col = (np.mean(axis) for axis in np.nonzero(region))
    best = np.argmin(np.hypot(rows + (low - 1) / 2 - centre_row, cols + (low - 1) / 2 - centre_col))
    return slice(rows[best], rows[best] + low), slice(cols[best], cols[best] + low)


def region_summary(region: np.ndarray) -> dict:
    """What a region is, in JSON types: pixel count, bounding box and the square MS-SSIM and
    FRC use."""
    rows, cols = region_box(region)
    square_rows, square_cols = largest_square(region)
    box_pixels = (rows.stop - rows.start) * (cols.stop - cols.start)
    return {
        "illuminated_px": int(region.sum()),
        "box_rows": [int(rows.start), int(rows.stop)],
        "box_cols": [int(cols.start), int(cols.stop)],
        "box_fraction": float(region.sum() / box_pixels),
        "square_rows": [int(square_rows.start), int(square_rows.stop)],
        "square_cols": [int(square_cols.start), int(square_cols.stop)],
        "square_side_px": int(square_rows.stop - square_rows.start),
    }


# --------------------------------------------------------------------------------------------
# Alignment


@dataclass(frozen=True)
class Alignment:
    """What :func:`align` removed.

    ``aligned(y, x) = gain * exp(i (ramp_x (x - x0) + ramp_y (y - y0))) * recon(y - dy, x - dx)``
    with ``shift = (dx, dy)`` px, ``ramp`` in rad/px and ``(x0, y0) = ramp_origin``, the centroid
    of the region. ``residual`` is ``sum |truth - aligned|^2 / sum |truth - mean(truth)|^2`` over
    the region: 0 for a perfect match, about 1 (or more) when the reconstruction explains none of
    the truth's structure. ``bound_hit`` says the shift sits on the bound ``max_shift`` (px, each
    axis).
    """

    shift: tuple[float, float]
    ramp: tuple[float, float]
    gain: complex
    ramp_origin: tuple[float, float]
    residual: float
    bound_hit: bool
    max_shift: float

    def to_dict(self) -> dict:
        """Flat JSON form (scalars only), the gain as amplitude and phase (rad)."""
        return {
            "shift_x_px": self.shift[0],
            "shift_y_px": self.shift[1],
            "ramp_x_rad_per_px": self.ramp[0],
            "ramp_y_rad_per_px": self.ramp[1],
            "ramp_origin_x_px": self.ramp_origin[0],
            "ramp_origin_y_px": self.ramp_origin[1],
            "gain_amplitude": abs(self.gain),
            "gain_phase_rad": float(np.angle(self.gain)),
            "residual": self.residual,
            "bound_hit": self.bound_hit,
            "max_shift_px": self.max_shift,
        }


class _Mover:
    """Moves ``image`` by ``(dx, dy)`` px, with nothing wrapped around.

    The shift is a Fourier phase (exact for band-limited content, and it keeps the noise power)
    applied to the image's even extension (the image and its mirror images), which is periodic
    and continuous; content entering at an edge is the mirror image of what lies at that edge.
    The spectrum is computed once, so each shift costs one inverse transform.
    """

    def __init__(self, image: np.ndarray) -> None:
        image = np.asarray(image, dtype=np.complex128)
        self.shape = image.shape
        height, width = self.shape
        self.extension = np.pad(image, ((0, height), (0, width)), mode="symmetric")
        self.spectrum = fft.fft2(self.extension)
        self.fy, self.fx = fft.fftfreq(2 * height), fft.fftfreq(2 * width)

    def _phase(self, shift: Sequence[float] | np.ndarray) -> np.ndarray:
        dx, dy = float(shift[0]), float(shift[1])
        along_y, along_x = np.exp(-2j * np.pi * self.fy * dy), np.exp(-2j * np.pi * self.fx * dx)
        return along_y[:, None] * along_x[None, :]

    def __call__(self, shift: Sequence[float] | np.ndarray) -> np.ndarray:
        height, width = self.shape
        dx, dy = float(shift[0]), float(shift[1])
        if dx.is_integer() and dy.is_integer():  # the same result, read from the extension
            rows = (np.arange(height) - int(dy)) % (2 * height)
            cols = (np.arange(width) - int(dx)) % (2 * width)
            return self.extension[np.ix_(rows, cols)]
        return fft.ifft2(self.spectrum * self._phase(shift))[:height, :width]

    def with_gradient(self, shift: Sequence[float] | np.ndarray) -> np.ndarray:
        """The moved image and its derivatives along x and along y, stacked (3, height, width)."""
        height, width = self.shape
        moved = self.spectrum * self._phase(shift)
        d_dx, d_dy = 2j * np.pi * self.fx[None, :], 2j * np.pi * self.fy[:, None]
        stack = np.stack((moved, moved * d_dx, moved * d_dy))
        return fft.ifft2(stack, axes=(-2, -1))[:, :height, :width]


def translate(image: np.ndarray, shift: Sequence[float] | np.ndarray) -> np.ndarray:
    """``image`` moved by ``shift = (dx, dy)`` px without wrap-around (see :class:`_Mover`)."""
    return _Mover(image)(shift)


def _best_gain(moved: np.ndarray, target: np.ndarray) -> complex:
    """Least-squares complex factor ``g`` minimising ``|target - g moved|^2``."""
    power = np.vdot(moved, moved).real
    return complex(np.vdot(moved, target) / power) if power > 0 else 0j


def _parabola_peak(left: float, centre: float, right: float) -> float:
    """Offset (in samples, within +-1/2) of the vertex of the parabola through three samples."""
    curvature = left - 2 * centre + right
    return 0.0 if curvature >= 0 else float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))


def _best_ramp(product: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, float]:
    """Ramp ``(ax, ay)`` (rad/px) maximising ``|sum product exp(-i (ax x + ay y))|``, and that
    maximum.

    All ramps are tried at once by a Fourier transform zero-padded to (at least) twice the
    region; the peak is then refined between the samples by a parabola along each axis.
    """
    size = tuple(fft.next_fast_len(2 * (int(np.ptp(axis)) + 1)) for axis in (rows, cols))
    padded = np.zeros(size, dtype=np.complex128)
    padded[rows - rows.min(), cols - cols.min()] = product
    spectrum = np.abs(fft.fft2(padded))
    peak = np.unravel_index(np.argmax(spectrum), size)
    ramp_rc = []  # (row, column) axes
    for axis, n in enumerate(size):
        before, after = list(peak), list(peak)
        before[axis], after[axis] = (peak[axis] - 1) % n, (peak[axis] + 1) % n
        offset = _parabola_peak(spectrum[tuple(before)], spectrum[peak], spectrum[tuple(after)])
        ramp_rc.append(2 * np.pi * (fft.fftfreq(n)[peak[axis]] + offset / n))
    ramp = np.array(ramp_rc[::-1])  # (ax, ay) from the (row, column) axes
    value = abs(
        np.sum(
            product * np.exp(-1j * (ramp[0] * (cols - cols.min()) + ramp[1] * (rows - rows.min())))
        )
    )
    return ramp, float(value)


def _coarse(
    move_truth: _Mover, recon: np.ndarray, region: np.ndarray, bound: int
) -> tuple[np.ndarray, np.ndarray]:
    """Integer shift ``s = (dx, dy)`` within ``bound`` and ramp ``a`` (rad/px) maximising the
    unnormalised cross-correlation ``|sum_region truth(r + s) conj(recon(r)) exp(-i a.r)|``.

    Ties go to the smaller shift.
    """
    rows, cols = np.nonzero(region)
    conj_recon = np.conj(recon[rows, cols])
    best, found = -1.0, (np.zeros(2), np.zeros(2))
    candidates = [(dx, dy) for dx in range(-bound, bound + 1) for dy in range(-bound, bound + 1)]
    for shift in sorted(candidates, key=lambda s: (s[0] ** 2 + s[1] ** 2, s)):
        moved = move_truth((-shift[0], -shift[1]))[rows, cols]
        ramp, value = _best_ramp(moved * conj_recon, rows, cols)
        if value > best * (1 + 1e-9):
            best, found = value, (np.array(shift, dtype=float), ramp)
    return found


def align(
    recon: np.ndarray, truth: np.ndarray, region: np.ndarray, max_shift: float = MAX_SHIFT_PX
) -> tuple[np.ndarray, Alignment]:
    """Register ``recon`` onto ``truth`` inside ``region``: bounded shift, ramp, complex gain.

    The parameters are estimated by moving the (noise-free) truth, so the noise of the
    reconstruction is never interpolated while the fit looks for its minimum: a coarse search
    (:func:`_coarse`) picks the integer shift within ``max_shift`` and the ramp with the largest
    unnormalised cross-correlation, then a joint least-squares fit refines the sub-pixel shift
    (bounded), the ramp and the gain (solved exactly for each shift and ramp). The reconstruction
    is then moved, de-ramped and scaled. Returns it (same shape as ``truth``) and the
    :class:`Alignment`.
    """
    recon = np.asarray(recon, dtype=np.complex128)
    truth = np.asarray(truth, dtype=np.complex128)
    if recon.shape != truth.shape or region.shape != truth.shape:
        raise ValueError(
            f"shapes differ: recon {recon.shape}, truth {truth.shape}, region {region.shape}"
        )
    if not max_shift >= 0:
        raise ValueError(f"the shift bound must be >= 0 px, got {max_shift}")
    # Work on the region's box plus room for the largest shift and the mirror-edge transients.
    crop = _fast_crop(
        _grown(region_box(region), int(np.ceil(max_shift)) + CROP_MARGIN, truth.shape), truth.shape
    )
    rows, cols = np.nonzero(region[crop])
    origin = np.array([cols.mean() + crop[1].start, rows.mean() + crop[0].start])
    x, y = cols + crop[1].start - origin[0], rows + crop[0].start - origin[1]
    observed = recon[crop][rows, cols]
    move_truth = _Mover(truth[crop])
    shift0, ramp0 = _coarse(move_truth, recon[crop], region[crop], int(np.floor(max_shift)))
    free_shift = max_shift > 0

    @lru_cache(maxsize=1)  # the residuals and the Jacobian are asked for at the same point
    def model_at(point: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, complex]:
        """At ``point`` (ramp, then shift): the truth at ``r + shift`` and its x and y derivatives
        on the region (3, pixels), the de-ramped reconstruction there, and its best gain."""
        dx, dy = point[2:] if free_shift else (0.0, 0.0)
        truth_moved = move_truth.with_gradient((-dx, -dy))[:, rows, cols]
        model = observed * np.exp(1j * (point[0] * x + point[1] * y))
        return truth_moved, model, _best_gain(model, truth_moved[0])

    def residuals(params: np.ndarray) -> np.ndarray:
        truth_moved, model, gain = model_at(tuple(params))
        difference = truth_moved[0] - gain * model
        return np.concatenate((difference.real, difference.imag))

    def jacobian(params: np.ndarray) -> np.ndarray:
        """Derivatives of the residuals at the best gain held fixed (Kaufman's variable
        projection: the gradient is exact, since the residual is orthogonal to the model)."""
        truth_moved, model, gain = model_at(tuple(params))
        columns = [-1j * gain * x * model, -1j * gain * y * model]
        if free_shift:
            columns += [truth_moved[1], truth_moved[2]]
        stacked = np.stack(columns, axis=1)
        return np.concatenate((stacked.real, stacked.imag))

    start = np.concatenate((ramp0, shift0)) if free_shift else ramp0
    lower = [-np.inf, -np.inf] + ([-max_shift] * 2 if free_shift else [])
    upper = [np.inf, np.inf] + ([max_shift] * 2 if free_shift else [])
    start = np.clip(start, np.array(lower) + 1e-9, np.array(upper) - 1e-9)
    fit = least_squares(
        residuals,
        start,
        jac=jacobian,
        bounds=(lower, upper),
        x_scale="jac",
        max_nfev=MAX_FIT_EVALUATIONS,
        ftol=FIT_TOLERANCE,
    )
    ramp = fit.x[:2]
    shift = fit.x[2:] if free_shift else np.zeros(2)
    yy, xx = np.indices(truth.shape)
    deramped = np.exp(1j * (ramp[0] * (xx - origin[0]) + ramp[1] * (yy - origin[1]))) * translate(
        recon, shift
    )
    gain = _best_gain(deramped[region], truth[region])
    aligned = gain * deramped
    inside = aligned[region] - truth[region]
    structure = truth[region] - truth[region].mean()
    power = np.vdot(structure, structure).real
    return aligned, Alignment(
        shift=(float(shift[0]), float(shift[1])),
        ramp=(float(ramp[0]), float(ramp[1])),
        gain=gain,
        ramp_origin=(float(origin[0]), float(origin[1])),
        residual=float(np.vdot(inside, inside).real / max(power, np.finfo(float).tiny)),
        bound_hit=bool(free_shift and np.max(np.abs(shift)) >= max_shift - 1e-3),
        max_shift=float(max_shift),
    )


# --------------------------------------------------------------------------------------------
# Scores


def data_range(reference: np.ndarray) -> float:
    """The data range scores are computed on: max - min of the reference (1 if it is flat)."""
    return float(reference.max() - reference.min()) or 1.0


def ssim(image: np.ndarray, reference: np.ndarray, region: np.ndarray) -> float:
    """Mean of the SSIM map (skimage, 7-px window) over the pixels of ``region``, on the
    reference's data range there. The map is computed on the region's box grown by half a
    window, so windows at the region's edge see the real neighbouring pixels."""
    crop = _grown(region_box(region), SSIM_WINDOW // 2, region.shape)
    ref = np.asarray(reference[crop], dtype=np.float64)
    img = np.asarray(image[crop], dtype=np.float64)
    span = data_range(np.asarray(reference, np.float64)[region])
    _, ssim_map = structural_similarity(img, ref, data_range=span, win_size=SSIM_WINDOW, full=True)
    return float(ssim_map[region[crop]].mean())


def ms_ssim_scales(side: int) -> int:
    """MS-SSIM scales for a square of ``side`` px: the most (at most 5) for which the coarsest
    image still holds a full window and torchmetrics accepts the size."""
    return next(
        (
            s
            for s in range(len(MS_SSIM_WEIGHTS), 0, -1)
            if side / 2 ** (s - 1) >= MS_SSIM_KERNEL
            and side // max(1, s - 1) ** 2 > MS_SSIM_KERNEL - 1
        ),
        0,
    )


def ms_ssim(
    image: np.ndarray, reference: np.ndarray, region: np.ndarray, sigma: float = 1.0
) -> float:
    """MS-SSIM on the largest square inside ``region``, after Gaussian pre-smoothing of width
    ``sigma``, on the reference's data range over the region; scale weights renormalised.

    Raises :class:`Unmeasurable` when the square is too small for two scales, or when a scale's
    contrast-structure term is negative: raised to a fractional power it has no real value (the
    usual clipping to 0 would report an unmeasurable score as the worst one).
    """
    square = largest_square(region)
    side = square[0].stop - square[0].start
    scales = ms_ssim_scales(side)
    if scales < MS_SSIM_MIN_SCALES:
        raise Unmeasurable(
            f"illuminated square {side} px, too small for {MS_SSIM_MIN_SCALES} scales"
        )
    ref = ndimage.gaussian_filter(np.asarray(reference[square], dtype=np.float64), sigma)
    img = ndimage.gaussian_filter(np.asarray(image[square], dtype=np.float64), sigma)
    weights = np.array(MS_SSIM_WEIGHTS[:scales])
    value = multiscale_structural_similarity_index_measure(
        torch.from_numpy(img)[None, None],
        torch.from_numpy(ref)[None, None],
        kernel_size=MS_SSIM_KERNEL,
        sigma=1.5,
        data_range=data_range(np.asarray(reference, np.float64)[region]),
        betas=tuple(weights / weights.sum()),
        normalize=None,  # a negative term stays undefined instead of being clipped to 0
    )
    if not torch.isfinite(value):
        raise Unmeasurable("a scale's contrast-structure term is negative (anti-correlated)")
    return float(value)


def psnr(image: np.ndarray, reference: np.ndarray, region: np.ndarray) -> float:
    """PSNR in dB on the reference's data range over ``region``.

    Raises :class:`Unmeasurable` for identical images (infinite PSNR).
    """
    ref, img = np.asarray(reference[region], np.float64), np.asarray(image[region], np.float64)
    if np.array_equal(ref, img):
        raise Unmeasurable("identical images (infinite PSNR)")
    return float(peak_signal_noise_ratio(ref, img, data_range=data_range(ref)))


def mae(image: np.ndarray, reference: np.ndarray, region: np.ndarray) -> float:
    """Mean absolute error over ``region``."""
    difference = np.asarray(image[region], np.float64) - np.asarray(reference[region], np.float64)
    return float(np.mean(np.abs(difference)))


@dataclass(frozen=True)
class FRC:
    """Fourier ring correlation: the curve per ring and the resolution cut-offs (cycles per
    pixel); a cut-off that cannot be measured is ``None`` with its reason in ``reasons``
    (keys ``frc50`` and ``frc_half_bit``)."""

    frequency: np.ndarray
    correlation: np.ndarray
    half_bit: np.ndarray
    cutoff_half: float | None
    cutoff_half_bit: float | None
    reasons: dict[str, str]


def _first_crossing(frequency: np.ndarray, curve: np.ndarray, threshold: np.ndarray) -> float:
    """Frequency where ``curve`` first drops below ``threshold`` (linear interpolation).

    Raises :class:`Unmeasurable` when it never does (the resolution is beyond Nyquist) or does
    within the first :data:`FRC_MIN_RINGS` rings: they hold so few pixels (about 6 per ring) that
    uncorrelated images pass 0.5 there by chance, so no resolution can be read from them.
    """
    below = np.flatnonzero(curve < threshold)
    if below.size == 0:
        raise Unmeasurable("never below the threshold up to Nyquist")
    i = int(below[0])
    if i < FRC_MIN_RINGS:
        raise Unmeasurable(f"below the threshold within the first {FRC_MIN_RINGS} rings")
    gap_before, gap_after = curve[i - 1] - threshold[i - 1], curve[i] - threshold[i]
    weight = gap_before / (gap_before - gap_after)
    return float(frequency[i - 1] + weight * (frequency[i] - frequency[i - 1]))


def frc(image: np.ndarray, reference: np.ndarray, region: np.ndarray) -> FRC:
    """FRC of two real images on the (Hann-apodised) largest square inside ``region``.

    Thresholds: the fixed 0.5 and the 1/2-bit curve of van Heel & Schatz (2005),
    T(n) = (0.2071 + 1.9102/sqrt(n)) / (1.2071 + 0.9102/sqrt(n)) with n pixels in the ring.
    Raises :class:`Unmeasurable` when the square is smaller than :data:`FRC_MIN_SIDE`.
    """
    box = largest_square(region)
    side = box[0].stop - box[0].start
    if side < FRC_MIN_SIDE:
        raise Unmeasurable(f"illuminated square {side} px, below the {FRC_MIN_SIDE} px FRC needs")
    taper = window("hann", (side, side))
    spectra = [
        np.fft.fftshift(np.fft.fft2((a[box] - a[box].mean()) * taper))
        for a in (np.asarray(image, np.float64), np.asarray(reference, np.float64))
    ]
    yy, xx = np.indices((side, side)) - side // 2
    ring = np.rint(np.hypot(xx, yy)).astype(int).ravel()
    rings = side // 2
    keep = ring < rings
    ring = ring[keep]
    f1, f2 = spectra[0].ravel()[keep], spectra[1].ravel()[keep]
    cross = np.bincount(ring, (f1 * np.conj(f2)).real, minlength=rings)
    power1 = np.bincount(ring, np.abs(f1) ** 2, minlength=rings)
    power2 = np.bincount(ring, np.abs(f2) ** 2, minlength=rings)
    count = np.bincount(ring, minlength=rings)
    correlation = cross / np.sqrt(np.maximum(power1 * power2, np.finfo(float).tiny))
    root = np.sqrt(count)
    half_bit = (0.2071 + 1.9102 / root) / (1.2071 + 0.9102 / root)
    frequency = np.arange(rings) / side
    # Ring 0 holds only the (removed) mean: score from the first ring out.
    frequency, correlation, half_bit = frequency[1:], correlation[1:], half_bit[1:]
    cutoffs: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for name, threshold in (("frc50", np.full_like(correlation, 0.5)), ("frc_half_bit", half_bit)):
        try:
            cutoffs[name] = _first_crossing(frequency, correlation, threshold)
        except Unmeasurable as why:
            cutoffs[name], reasons[name] = None, str(why)
    return FRC(frequency, correlation, half_bit, cutoffs["frc50"], cutoffs["frc_half_bit"], reasons)


COMPONENTS = (("amplitude", np.abs), ("phase", np.angle))


@dataclass(frozen=True)
class Scores:
    """Every metric per component (``values[component][metric]``, ``None`` when it cannot be
    measured, with ``reasons[component][metric]`` saying why), the FRC curves (``None`` when
    the square is too small) and :func:`region_summary` of the region scored."""

    values: dict[str, dict[str, float | None]]
    reasons: dict[str, dict[str, str]]
    curves: dict[str, FRC | None]
    region: dict

    def to_dict(self) -> dict:
        """JSON form: the values (null when undefined), the reasons and the region."""
        return {"scores": self.values, "undefined": self.reasons, "region": self.region}


def score_aligned(
    aligned: np.ndarray, truth: np.ndarray, region: np.ndarray, ms_ssim_sigma: float = 1.0
) -> Scores:
    """Every metric of an already aligned reconstruction, for amplitude and phase.

    Per component: ssim, ms_ssim, psnr (dB, on ``psnr_data_range``, the truth's range in the
    region), mae, frc50 and frc_half_bit (cycles/px).
    """
    values, reasons, curves = {}, {}, {}
    truth = np.asarray(truth, np.complex128)
    for component, part in COMPONENTS:
        img, ref = part(aligned), part(truth)
        found: dict[str, float | None] = {}
        why: dict[str, str] = {}
        for metric, measure, args in (
            ("ssim", ssim, (img, ref, region)),
            ("ms_ssim", ms_ssim, (img, ref, region, ms_ssim_sigma)),
            ("psnr", psnr, (img, ref, region)),
            ("psnr_data_range", data_range, (ref[region],)),
            ("mae", mae, (img, ref, region)),
        ):
            try:
                found[metric] = measure(*args)
            except Unmeasurable as error:
                found[metric], why[metric] = None, str(error)
        try:
            curve = frc(img, ref, region)
        except Unmeasurable as error:
            curve = None
            found["frc50"] = found["frc_half_bit"] = None
            why["frc50"] = why["frc_half_bit"] = str(error)
        else:
            assert curve is not None  # set by the try body (mypy loses that in a loop)
            found["frc50"], found["frc_half_bit"] = curve.cutoff_half, curve.cutoff_half_bit
            why.update(curve.reasons)
        values[component], reasons[component], curves[component] = found, why, curve
    return Scores(values, reasons, curves, region_summary(region))


def score(
    recon: np.ndarray,
    truth: np.ndarray,
    region: np.ndarray,
    max_shift: float = MAX_SHIFT_PX,
    ms_ssim_sigma: float = 1.0,
) -> tuple[np.ndarray, Alignment, Scores]:
    """Align ``recon`` to ``truth`` (:func:`align`), then score it (:func:`score_aligned`).

    Returns the aligned reconstruction, the alignment applied and the scores.
    """
    aligned, alignment = align(recon, truth, region, max_shift)
    return aligned, alignment, score_aligned(aligned, truth, region, ms_ssim_sigma)


def amplitude_phase_ssim(
    recon: np.ndarray, truth: np.ndarray, region: np.ndarray
) -> dict[str, float]:
    """Align, then SSIM of amplitude and of phase inside ``region``."""
    aligned, _ = align(recon, truth, region)
    return {
        "amplitude_ssim": ssim(np.abs(aligned), np.abs(truth), region),
        "phase_ssim": ssim(np.angle(aligned), np.angle(truth), region),
    }
