"""Scoring a reconstruction against ground truth.

A ptychographic reconstruction is only defined up to a global complex factor (amplitude scale and
phase offset), a linear phase ramp and, in practice, a small shift. :func:`align` removes all four
before any score is computed, and scores are taken inside the scanned region only (a boolean mask,
cropped to its bounding box).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from skimage.filters import window
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.registration import phase_cross_correlation
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

# Wang et al. (2003) MS-SSIM scale weights, finest first; fewer scales use the first ones, renormalised.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_KERNEL = 7


def region_box(region: np.ndarray) -> tuple[slice, slice]:
    """Bounding box of a non-empty boolean mask as a pair of slices."""
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    if rows.size == 0:
        raise ValueError("the scored region is empty")
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


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


@dataclass(frozen=True)
class Alignment:
    """What :func:`align` removed: shift (x, y) px, phase ramp (rad/px in x, y), complex gain."""

    shift: tuple[float, float]
    ramp: tuple[float, float]
    gain: complex


def _fit_ramp(recon: np.ndarray, truth: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """Least-squares plane through the phase of ``truth * conj(recon)`` (weighted by amplitude)."""
    rows, cols = np.nonzero(region)
    product = truth[rows, cols] * np.conj(recon[rows, cols])
    # Remove the mean phase first so the residual needs no unwrapping for modest ramps.
    product = product * np.exp(-1j * np.angle(product.sum()))
    phase = np.angle(product)
    weights = np.sqrt(np.abs(product))
    design = np.stack((cols - cols.mean(), rows - rows.mean(), np.ones_like(cols, dtype=float)), axis=1)
    coef, *_ = np.linalg.lstsq(design * weights[:, None], phase * weights, rcond=None)
    return float(coef[0]), float(coef[1])


def align(recon: np.ndarray, truth: np.ndarray, region: np.ndarray, subpixel: int = 20) -> tuple[np.ndarray, Alignment]:
    """Register ``recon`` onto ``truth`` inside ``region``: shift, phase ramp, then complex gain.

    Returns the aligned reconstruction (same shape as ``truth``) and the parameters removed.
    """
    recon = np.asarray(recon, dtype=np.complex128)
    truth = np.asarray(truth, dtype=np.complex128)
    if recon.shape != truth.shape or region.shape != truth.shape:
        raise ValueError(f"shapes differ: recon {recon.shape}, truth {truth.shape}, region {region.shape}")
    box = region_box(region)
    yy, xx = np.indices(truth.shape)

    def deramp(image: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        ramp_x, ramp_y = _fit_ramp(image, truth, region)
        return image * np.exp(1j * (ramp_x * xx + ramp_y * yy)), (ramp_x, ramp_y)

    # A phase ramp moves the spectrum (confusing the cross-correlation) and is not periodic
    # (so a Fourier shift would ring), so take the ramp out before registering and shifting,
    # then refit what is left of it on the registered image.
    coarse, (ramp_x, ramp_y) = deramp(recon)
    taper = window("hann", truth[box].shape)
    shift_yx, _, _ = phase_cross_correlation(truth[box] * taper, coarse[box] * taper, upsample_factor=subpixel)
    shifted = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(coarse), shift_yx))
    deramped, (fine_x, fine_y) = deramp(shifted)
    ramp_x, ramp_y = ramp_x + fine_x, ramp_y + fine_y
    inside = deramped[region]
    gain = np.vdot(inside, truth[region]) / np.vdot(inside, inside)
    aligned = deramped * gain
    return aligned, Alignment(shift=(float(shift_yx[1]), float(shift_yx[0])), ramp=(ramp_x, ramp_y), gain=complex(gain))


def ssim(image: np.ndarray, reference: np.ndarray, region: np.ndarray) -> float:
    """SSIM inside the bounding box of ``region``, on the reference's data range there."""
    box = region_box(region)
    ref = np.asarray(reference[box], dtype=np.float64)
    img = np.asarray(image[box], dtype=np.float64)
    return float(structural_similarity(img, ref, data_range=data_range(ref)))


def data_range(reference: np.ndarray) -> float:
    """The data range scores are computed on: max - min of the reference (1 if it is flat)."""
    return float(reference.max() - reference.min()) or 1.0


def ms_ssim(image: np.ndarray, reference: np.ndarray, region: np.ndarray, sigma: float = 1.0) -> float:
    """MS-SSIM inside the bounding box of ``region`` after Gaussian pre-smoothing of width ``sigma``.

    The number of scales is the largest (at most 5) for which the coarsest image still holds a
    full 7-px window (and torchmetrics accepts the size), so 64-128 px images get 3-4 scales;
    their weights are renormalised.
    """
    box = region_box(region)
    ref = ndimage.gaussian_filter(np.asarray(reference[box], dtype=np.float64), sigma)
    img = ndimage.gaussian_filter(np.asarray(image[box], dtype=np.float64), sigma)
    side = min(ref.shape)
    # Each scale halves the image, which must still hold a full window; torchmetrics also asks
    # for side // (scales - 1)^2 > kernel - 1.
    scales = next(
        (s for s in range(len(MS_SSIM_WEIGHTS), 0, -1)
         if side / 2 ** (s - 1) >= MS_SSIM_KERNEL and side // max(1, s - 1) ** 2 > MS_SSIM_KERNEL - 1),
        0,
    )
    if scales < 1:
        raise ValueError(f"region {ref.shape} is too small for MS-SSIM (needs at least {MS_SSIM_KERNEL} px)")
    weights = np.array(MS_SSIM_WEIGHTS[:scales])
    value = multiscale_structural_similarity_index_measure(
        torch.from_numpy(img)[None, None],
        torch.from_numpy(ref)[None, None],
        kernel_size=MS_SSIM_KERNEL,
        sigma=1.5,
        data_range=data_range(ref),
        betas=tuple(weights / weights.sum()),
    )
    return float(value)


def psnr(image: np.ndarray, reference: np.ndarray, region: np.ndarray) -> float | None:
    """PSNR in dB on the reference's data range over ``region``; ``None`` for a perfect match."""
    ref, img = np.asarray(reference[region], np.float64), np.asarray(image[region], np.float64)
    if np.array_equal(ref, img):
        return None
    return float(peak_signal_noise_ratio(ref, img, data_range=data_range(ref)))


def mae(image: np.ndarray, reference: np.ndarray, region: np.ndarray) -> float:
    """Mean absolute error over ``region``."""
    return float(np.mean(np.abs(np.asarray(image[region], np.float64) - np.asarray(reference[region], np.float64))))


@dataclass(frozen=True)
class FRC:
    """Fourier ring correlation: curve per ring and the resolution cut-offs (cycles per pixel)."""

    frequency: np.ndarray
    correlation: np.ndarray
    half_bit: np.ndarray
    cutoff_half: float
    cutoff_half_bit: float


def _first_crossing(frequency: np.ndarray, curve: np.ndarray, threshold: np.ndarray) -> float:
    """Frequency where ``curve`` first drops below ``threshold`` (linear interpolation); Nyquist if never."""
    below = np.flatnonzero(curve < threshold)
    if below.size == 0:
        return float(frequency[-1])
    i = int(below[0])
    if i == 0:
        return float(frequency[0])
    gap_before, gap_after = curve[i - 1] - threshold[i - 1], curve[i] - threshold[i]
    weight = gap_before / (gap_before - gap_after)
    return float(frequency[i - 1] + weight * (frequency[i] - frequency[i - 1]))


def frc(image: np.ndarray, reference: np.ndarray, region: np.ndarray) -> FRC:
    """FRC of two real images inside the (square-cropped, Hann-apodised) bounding box of ``region``.

    Thresholds: the fixed 0.5 and the 1/2-bit curve of van Heel & Schatz (2005),
    T(n) = (0.2071 + 1.9102/sqrt(n)) / (1.2071 + 0.9102/sqrt(n)) with n pixels in the ring.
    """
    rows, cols = region_box(region)
    side = min(rows.stop - rows.start, cols.stop - cols.start)
    box = (slice(rows.start, rows.start + side), slice(cols.start, cols.start + side))
    taper = window("hann", (side, side))
    spectra = [np.fft.fftshift(np.fft.fft2((a[box] - a[box].mean()) * taper)) for a in (np.asarray(image, np.float64), np.asarray(reference, np.float64))]
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
    return FRC(
        frequency=frequency,
        correlation=correlation,
        half_bit=half_bit,
        cutoff_half=_first_crossing(frequency, correlation, np.full_like(correlation, 0.5)),
        cutoff_half_bit=_first_crossing(frequency, correlation, half_bit),
    )


def score_aligned(aligned: np.ndarray, truth: np.ndarray, region: np.ndarray, ms_ssim_sigma: float = 1.0) -> tuple[dict[str, dict[str, float | None]], dict[str, FRC]]:
    """Every metric of an already aligned reconstruction (see :func:`score`), and the FRC curves
    behind ``frc50`` / ``frc_half_bit`` per component."""
    scores, curves = {}, {}
    for component, part in (("amplitude", np.abs), ("phase", np.angle)):
        img, ref = part(aligned), part(np.asarray(truth, np.complex128))
        curve = curves[component] = frc(img, ref, region)
        scores[component] = {
            "ssim": ssim(img, ref, region),
            "ms_ssim": ms_ssim(img, ref, region, ms_ssim_sigma),
            "psnr": psnr(img, ref, region),
            "psnr_data_range": data_range(ref[region]),
            "mae": mae(img, ref, region),
            "frc50": curve.cutoff_half,
            "frc_half_bit": curve.cutoff_half_bit,
        }
    return scores, curves


def score(recon: np.ndarray, truth: np.ndarray, region: np.ndarray, ms_ssim_sigma: float = 1.0) -> dict[str, dict[str, float | None]]:
    """Align ``recon`` to ``truth``, then every metric for amplitude and phase inside ``region``.

    Returns ``{"amplitude": {...}, "phase": {...}}``; each holds ssim, ms_ssim, psnr (dB, on the
    truth's data range in the region, also reported), mae, frc50 and frc_half_bit (cycles/px).
    """
    aligned, _ = align(recon, truth, region)
    return score_aligned(aligned, truth, region, ms_ssim_sigma)[0]


def amplitude_phase_ssim(recon: np.ndarray, truth: np.ndarray, region: np.ndarray) -> dict[str, float]:
    """Align, then SSIM of amplitude and of phase inside ``region``."""
    aligned, _ = align(recon, truth, region)
    return {
        "amplitude_ssim": ssim(np.abs(aligned), np.abs(truth), region),
        "phase_ssim": ssim(np.angle(aligned), np.angle(truth), region),
    }
