"""Probe models: pure numpy functions returning an N x N complex64 field, peak amplitude 1,
centred on pixel ``[N/2, N/2]`` (the same centre as :func:`ptypinn.physics.forward.far_field`'s
zero frequency).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter
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


def zone_plate_probe(
    size: int, beam_diameter: float, pupil_fraction: float = 0.5, central_stop: float = 0.3
) -> np.ndarray:
    """A zone plate's focus, with its central stop, seen at a sample plane past the focus.

    Everything is on the sample grid (pixel ``dx``, spatial frequency ``rho`` in cycles/px):

    * The lens's pupil, seen from the focus, is an annulus in spatial frequency: outer radius
      ``rho_o = pupil_fraction / 2`` (``pupil_fraction`` of the grid's Nyquist frequency), inner
      radius ``central_stop * rho_o``. For a zone plate of outermost zone width ``dr`` the
      numerical aperture is ``NA = lambda / (2 dr)``, so ``rho_o = NA / lambda`` and
      ``pupil_fraction = dx / dr``.
    * The focal-plane field is the inverse Fourier transform of the pupil (in focus: the Airy
      pattern of an annulus, its first dark ring near ``0.61 / rho_o`` px).
    * The sample sits a distance ``z`` past the focus, reached by the angular-spectrum propagator
      in its paraxial (Fresnel) form ``H(rho) = exp(-i pi lambda z rho^2)``. ``z`` is given by the
      geometric beam diameter at the sample, ``beam_diameter = 2 z NA / dx = 2 lambda z rho_o``
      px, so the defocus phase at the pupil rim is ``pi lambda z rho_o^2 =
      pi * beam_diameter * pupil_fraction / 4`` rad. In physical units:
      ``z = beam_diameter * dx * dr / lambda`` (e.g. ``lambda`` = 0.1 nm, ``dr`` = 50 nm,
      ``dx`` = 25 nm: ``pupil_fraction`` 0.5, and a 32 px beam is 400 um past the focus).

    The rings, the central-stop shadow (a dark core of diameter ``central_stop * beam_diameter``
    once the beam is out of focus) and the fringes at its edges come from the propagation. The
    field is periodic on the grid: keep ``beam_diameter`` well below ``size``.
    Returns complex64, peak amplitude 1, centred on ``[N/2, N/2]``.
    """
    if not 0 <= beam_diameter < size:
        raise ValueError(f"zone-plate beam diameter must be in [0, {size}) px, got {beam_diameter}")
    if not 0 < pupil_fraction <= 1:
        raise ValueError(f"pupil fraction must be in (0, 1], got {pupil_fraction}")
    if not 0 <= central_stop < 1:
        raise ValueError(f"central stop must be in [0, 1) of the pupil, got {central_stop}")
    outer = pupil_fraction / 2
    rho = _radius(size) / size  # spatial frequency, cycles/px, zero at [N/2, N/2]
    pupil = (rho <= outer) & (rho >= central_stop * outer)
    rim_phase = math.pi * beam_diameter * pupil_fraction / 4
    spectrum = pupil * np.exp(-1j * rim_phase * (rho / outer) ** 2)
    field = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(spectrum)))
    return (field / np.abs(field).max()).astype(np.complex64)


def phase_screen(size: int, correlation_px: float, rms_phase: float, seed: int) -> np.ndarray:
    """A smooth random phase (rad, float64, ``size x size``): white noise from
    ``default_rng(seed)`` smoothed by a Gaussian of sigma ``correlation_px / 2`` (periodic), mean
    removed, scaled to an rms of exactly ``rms_phase``. Its autocorrelation is
    ``exp(-d^2 / correlation_px^2)``: ``1/e`` at a distance of ``correlation_px``."""
    if not correlation_px > 0:
        raise ValueError(f"phase-screen correlation length must be positive, got {correlation_px}")
    if not rms_phase >= 0:
        raise ValueError(f"phase-screen rms phase must be >= 0 rad, got {rms_phase}")
    noise = np.random.default_rng(seed).standard_normal((size, size))
    smooth = gaussian_filter(noise, sigma=correlation_px / 2, mode="wrap")
    smooth -= smooth.mean()
    return rms_phase * smooth / smooth.std()


def diffuser_probe(
    base: np.ndarray, correlation_px: float, rms_phase: float, seed: int
) -> np.ndarray:
    """``base`` (any probe) times a diffuser: ``exp(i phase_screen(...))``. The amplitude, and so
    the footprint and the peak of 1, are the base probe's."""
    screen = phase_screen(base.shape[-1], correlation_px, rms_phase, seed)
    return (base * np.exp(1j * screen)).astype(np.complex64)
