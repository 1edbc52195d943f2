"""Ptychography physics: geometry, far-field forward model, photon noise and scans.

Conventions used everywhere in ptypinn:

* Positions are ``(x, y)`` in object pixels: ``x`` is the column, ``y`` the row.
* :func:`translate` moves image content by ``+t``: a feature at ``(x, y)`` ends up at
  ``(x + t_x, y + t_y)``. Interpolation is bilinear; samples from outside the image are zero.
* :func:`extract_patches` returns the ``N x N`` window *centred* on a position: patch pixel
  ``(r, c)`` samples the object at row ``y + r - N/2`` and column ``x + c - N/2``. For integer
  positions this is exactly ``obj[y - N/2 : y + N/2, x - N/2 : x + N/2]``.
* Far field: ``A = |fftshift(FFT2(P * O_patch))| / N`` (orthonormal FFT, zero frequency at
  ``[N/2, N/2]``), so ``sum(A**2) == sum(|psi|**2)`` (Parseval).
* Dose: ``s = sqrt(nphotons / mean_patterns sum |psi|^2)``, counts ``k ~ Poisson((s A)^2)``,
  stored amplitude ``sqrt(k) / s``. The dose changes the noise, never the stored scale.

The operators (:func:`translate`, :func:`extract_patches`, :func:`far_field`) are batched,
differentiable torch functions that run on whatever device their inputs live on. Scan builders
return numpy arrays (they create data rather than transform it); the probes are in
:mod:`ptypinn.physics.probes`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------
# Geometry


def _sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of real or complex ``images`` (B, H, W) at ``grid`` (B, h, w, 2).

    ``grid`` holds (x, y) in pixel units; outside samples are zero.
    """
    height, width = images.shape[-2:]
    norm = torch.tensor(
        [2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], dtype=grid.dtype, device=grid.device
    )
    grid = grid * norm - 1.0
    if images.is_complex():
        planes = torch.view_as_real(images).permute(0, 3, 1, 2)  # (B, 2, H, W)
        out = F.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return torch.view_as_complex(out.permute(0, 2, 3, 1).contiguous())
    out = F.grid_sample(
        images[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )
    return out[:, 0]


def _real_dtype(tensor: torch.Tensor) -> torch.dtype:
    return tensor.real.dtype if tensor.is_complex() else tensor.dtype


def translate(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Move the content of each image by its ``(t_x, t_y)`` shift (sub-pixel, bilinear).

    ``images``: (B, H, W) real or complex; ``shifts``: (B, 2) in pixels. Output shape = input.
    """
    if images.ndim != 3 or shifts.shape != (images.shape[0], 2):
        raise ValueError(
            "translate expects images (B,H,W) and shifts (B,2); "
            f"got {tuple(images.shape)} and {tuple(shifts.shape)}"
        )
    batch, height, width = images.shape
    dtype = _real_dtype(images)
    rows = torch.arange(height, dtype=dtype, device=images.device)
    cols = torch.arange(width, dtype=dtype, device=images.device)
    yy, xx = torch.meshgrid(rows, cols, indexing="ij")
    base = torch.stack((xx, yy), dim=-1)  # (H, W, 2) as (x, y)
    grid = base[None] - shifts.to(dtype)[:, None, None, :]
    return _sample(images, grid)


def extract_patches(obj: torch.Tensor, positions: torch.Tensor, size: int) -> torch.Tensor:
    """Cut ``size x size`` windows centred on ``positions`` out of ``obj``.

    ``obj`` (H, W) with ``positions`` (n, 2), or a batch: ``obj`` (B, H, W) with ``positions``
    (B, n, 2), each image cut at its own positions. Sub-pixel positions are interpolated
    bilinearly; outside the object is zero. Returns (n, size, size), or (B, n, size, size), with
    the dtype of ``obj``.
    """
    batched = obj.ndim == 3 and positions.ndim == 3 and positions.shape[0] == obj.shape[0]
    if not batched and (obj.ndim != 2 or positions.ndim != 2):
        raise ValueError(
            "extract_patches expects obj (H,W) and positions (n,2), or obj (B,H,W) and positions "
            f"(B,n,2); got {tuple(obj.shape)} and {tuple(positions.shape)}"
        )
    if positions.shape[-1] != 2:
        raise ValueError(f"positions must hold (x, y) pairs, got {tuple(positions.shape)}")
    images = obj if batched else obj[None]
    points = positions if batched else positions[None]
    dtype = _real_dtype(obj)
    offsets = torch.arange(size, dtype=dtype, device=obj.device) - size // 2
    yy, xx = torch.meshgrid(offsets, offsets, indexing="ij")
    local = torch.stack((xx, yy), dim=-1)  # (N, N, 2)
    batch, count = points.shape[:2]
    grid = points.to(dtype)[:, :, None, None, :] + local  # (B, n, N, N, 2)
    out = _sample(images, grid.reshape(batch, count * size, size, 2))
    out = out.reshape(batch, count, size, size)
    return out if batched else out[0]


# --------------------------------------------------------------------------------------------
# Forward model and noise


def far_field(exit_waves: torch.Tensor) -> torch.Tensor:
    """Far-field amplitude ``|fftshift(FFT2(psi))| / N`` over the last two axes (orthonormal)."""
    spectrum = torch.fft.fft2(exit_waves, norm="ortho")
    return torch.fft.fftshift(spectrum, dim=(-2, -1)).abs()


def probe_backpropagation(amplitudes: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """A first object estimate from far-field amplitudes alone: each measured amplitude
    (centred, as :func:`far_field` returns it) gets the phase of the probe's own far field, is
    propagated back, and is weighted by ``conj(P) / max|P|``.

    ``amplitudes`` (..., N, N) real, ``probe`` (N, N) complex; returns (..., N, N) complex. For an
    object of ones it is exactly ``|P|² / max|P|``: the probe's phase is given back to its own
    far field. For a real object it is a rough real-space guess, which spares a network learning
    the Fourier transform itself.
    """
    spectrum = torch.fft.fftshift(torch.fft.fft2(probe, norm="ortho"), dim=(-2, -1))
    phase = spectrum / spectrum.abs().clamp_min(torch.finfo(spectrum.real.dtype).tiny)
    unshifted = torch.fft.ifftshift(amplitudes.to(spectrum.real.dtype) * phase, dim=(-2, -1))
    return torch.fft.ifft2(unshifted, norm="ortho") * probe.conj() / probe.abs().max()


def exit_waves(obj: torch.Tensor, probe: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``P * O_patch`` for every position: (n, N, N) complex."""
    return probe * extract_patches(obj, positions, probe.shape[-1])


def pattern_energies(amplitudes: np.ndarray) -> np.ndarray:
    """``sum(A**2)`` of every pattern of an (n, N, N) amplitude stack, in float64."""
    amplitudes = np.asarray(amplitudes, dtype=np.float64)
    return np.einsum("nij,nij->n", amplitudes, amplitudes)


def dose_scale(energies: np.ndarray, nphotons: float) -> float:
    """Scale ``s`` that turns normalised amplitudes into photon-count amplitudes.

    ``energies`` are the per-pattern ``sum |psi|^2``; after scaling, the expected number of
    photons per pattern, averaged over the patterns, equals ``nphotons``.
    """
    mean_energy = float(np.mean(energies))
    if not mean_energy > 0:
        raise ValueError("the exit waves carry no energy: check the probe and the object")
    if not nphotons > 0:
        raise ValueError(f"nphotons must be positive, got {nphotons}")
    return math.sqrt(nphotons / mean_energy)


def mean_counts(amplitudes: np.ndarray, scale: float) -> float:
    """Mean photons per pattern of normalised amplitudes ``sqrt(k) / s``: ``s**2`` times the mean
    ``sum(A**2)``, i.e. the measured counts ``k`` averaged over the patterns."""
    return float(scale**2 * np.mean(pattern_energies(amplitudes))) if len(amplitudes) else 0.0


def poisson_observe(amplitude: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Noisy normalised amplitude ``sqrt(k) / s`` with ``k ~ Poisson((s * amplitude)**2)``."""
    counts = rng.poisson((scale * np.asarray(amplitude, dtype=np.float64)) ** 2)
    return (np.sqrt(counts) / scale).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Scans (numpy, (n, 2) float64 as (x, y), every patch fully inside the object)


def scan_bounds(
    object_shape: tuple[int, int], patch_size: int
) -> tuple[float, float, float, float]:
    """Inclusive range of positions whose patch (and its bilinear neighbours) lies in the object."""
    height, width = object_shape
    half = patch_size // 2
    x_lo, x_hi = float(half), float(width - half - 1)
    y_lo, y_hi = float(half), float(height - half - 1)
    if x_hi < x_lo or y_hi < y_lo:
        raise ValueError(
            f"object {height}x{width} px is too small for {patch_size}x{patch_size} patches"
        )
    return x_lo, x_hi, y_lo, y_hi


def raster_scan(
    object_shape: tuple[int, int],
    patch_size: int,
    step: float,
    jitter: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Row-major raster with spacing ``step`` px and uniform jitter of up to ``+-jitter`` px."""
    if not step > 0:
        raise ValueError(f"scan step must be positive, got {step}")
    x_lo, x_hi, y_lo, y_hi = scan_bounds(object_shape, patch_size)
    xs = np.arange(x_lo, x_hi + 1e-9, step)
    ys = np.arange(y_lo, y_hi + 1e-9, step)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    positions = np.stack((xx.ravel(), yy.ravel()), axis=1)
    if jitter > 0:
        rng = rng if rng is not None else np.random.default_rng()
        positions = positions + rng.uniform(-jitter, jitter, size=positions.shape)
        positions[:, 0] = positions[:, 0].clip(x_lo, x_hi)
        positions[:, 1] = positions[:, 1].clip(y_lo, y_hi)
    return positions


GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))


def fermat_scan(object_shape: tuple[int, int], patch_size: int, step: float) -> np.ndarray:
    """Fermat spiral centred on the object, with the point density of a hexagonal grid of
    ``step`` px.

    Point ``n`` sits at radius ``c sqrt(n)`` and angle ``n * golden angle``; each point then owns
    an area ``pi c^2``, equal to a hexagonal cell of spacing ``step`` when
    ``c = step * sqrt(sqrt(3) / (2 pi))``.
    """
    if not step > 0:
        raise ValueError(f"scan step must be positive, got {step}")
    x_lo, x_hi, y_lo, y_hi = scan_bounds(object_shape, patch_size)
    cx, cy = (x_lo + x_hi) / 2, (y_lo + y_hi) / 2
    c = step * math.sqrt(math.sqrt(3) / (2 * math.pi))
    r_max = math.hypot(x_hi - cx, y_hi - cy)
    n = np.arange(int((r_max / c) ** 2) + 1)
    r, theta = c * np.sqrt(n), n * GOLDEN_ANGLE
    positions = np.stack((cx + r * np.cos(theta), cy + r * np.sin(theta)), axis=1)
    inside = (
        (positions[:, 0] >= x_lo)
        & (positions[:, 0] <= x_hi)
        & (positions[:, 1] >= y_lo)
        & (positions[:, 1] <= y_hi)
    )
    return positions[inside]
