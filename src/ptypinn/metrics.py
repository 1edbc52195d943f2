"""Scoring a reconstruction against ground truth.

A ptychographic reconstruction is only defined up to a global complex factor (amplitude scale and
phase offset), a linear phase ramp and, in practice, a small shift. :func:`align` removes all four
before any score is computed, and scores are taken inside the scanned region only (a boolean mask,
cropped to its bounding box).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.filters import window
from skimage.metrics import structural_similarity
from skimage.registration import phase_cross_correlation


def region_box(region: np.ndarray) -> tuple[slice, slice]:
    """Bounding box of a non-empty boolean mask as a pair of slices."""
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    if rows.size == 0:
        raise ValueError("the scored region is empty")
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


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
    data_range = float(ref.max() - ref.min()) or 1.0
    return float(structural_similarity(img, ref, data_range=data_range))


def amplitude_phase_ssim(recon: np.ndarray, truth: np.ndarray, region: np.ndarray) -> dict[str, float]:
    """Align, then SSIM of amplitude and of phase inside ``region``."""
    aligned, _ = align(recon, truth, region)
    return {
        "amplitude_ssim": ssim(np.abs(aligned), np.abs(truth), region),
        "phase_ssim": ssim(np.angle(aligned), np.angle(truth), region),
    }
