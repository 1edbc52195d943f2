"""Probe models: pure numpy functions returning an N x N complex64 field, peak amplitude 1,
centred on pixel ``[N/2, N/2]`` (the same centre as :func:`ptypinn.physics.forward.far_field`'s
zero frequency).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfc, j1


def _radius(size: int) -> np.ndarray:
    centre = size // 2
    yy, xx = np.mgrid[:size, :size]
    return np.hypot(xx - centre, yy - centre)


def _finish_probe(
    field: np.ndarray, radius: np.ndarray, reference: float, curvature: float
) -> np.ndarray:
    """Apply a quadratic (defocus) phase ``curvature * (r / reference)**2`` and peak-normalise."""
    probe = field * np.exp(1j * curvature * (radius / reference) ** 2)
    return (probe / np.abs(probe).max()).astype(np.complex64)


def disk_probe(size: int, diameter: float, edge: float = 2.0, curvature: float = 3.0) -> np.ndarray:
    """Focused, apodised disk: flat top of ``diameter`` px with an erfc edge ``edge`` px wide.

    ``curvature`` is the defocus phase in radians at the disk rim.
    """
    if not 0 < diameter <= size:
        raise ValueError(f"probe diameter must be in (0, {size}] px, got {diameter}")
    radius = _radius(size)
    half = diameter / 2
    amplitude = 0.5 * erfc((radius - half) / max(edge, 1e-6))
    return _finish_probe(amplitude, radius, half, curvature)


def gaussian_probe(size: int, fwhm: float, curvature: float = 0.0) -> np.ndarray:
    """Gaussian spot with full width at half maximum ``fwhm`` px."""
    if not 0 < fwhm <= size:
        raise ValueError(f"probe FWHM must be in (0, {size}] px, got {fwhm}")
    radius = _radius(size)
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    return _finish_probe(np.exp(-(radius**2) / (2 * sigma**2)), radius, fwhm / 2, curvature)


AIRY_FIRST_ZERO = 3.8317059702075125  # first zero of J1


def airy_probe(size: int, first_zero_radius: float, curvature: float = 0.0) -> np.ndarray:
    """Airy spot ``2 J1(x) / x`` (signed field) whose first dark ring is at
    ``first_zero_radius`` px."""
    if not 0 < first_zero_radius <= size / 2:
        raise ValueError(
            f"Airy first-zero radius must be in (0, {size / 2}] px, got {first_zero_radius}"
        )
    radius = _radius(size)
    x = AIRY_FIRST_ZERO * radius / first_zero_radius
    field = np.where(x > 0, 2 * j1(x) / np.where(x > 0, x, 1.0), 1.0)
    return _finish_probe(field, radius, first_zero_radius, curvature)
