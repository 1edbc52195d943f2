"""Phase retrieval of single diffraction patterns with a known probe.

Each pattern is retrieved alone, with no overlap: the exit wave ``ψ = P·O`` must have the
measured far-field amplitude (the Fourier constraint, :func:`fourier_projection`) and come from
an object that lives on a support window and is passive, ``|O| ≤ 1`` (the object constraint,
:func:`object_projection`). :func:`retrieve_patches` iterates between the two; the result is a
real-space first guess per pattern (what PtychoPINN's ``inputs: retrieval`` gives its generator)
and, stitched, a yardstick for any method that works pattern by pattern.

The iteration is relaxed averaged alternating reflections with the object constraint applied
last: ``ψ ← β (ψ + P_S(2 P_M ψ − ψ) − P_M ψ) + (1 − β) P_S P_M ψ`` with ``P_M`` the Fourier and
``P_S`` the object projection. ``β = 0`` is error reduction; ``β ≈ 0.8`` escapes its stagnation
and converges in fewer iterations (``benchmarks/single_pattern_retrieval.py``).
"""

from __future__ import annotations

import torch

EPSILON = 1e-2
"""Regularises ``conj(P) / (|P|² + ε)`` where the probe is weak (relative to a peak |P| of 1)."""


def fourier_projection(exit_waves: torch.Tensor, amplitudes: torch.Tensor) -> torch.Tensor:
    """Give ``exit_waves`` (..., N, N) the far-field ``amplitudes`` (uncentred, FFT order), keeping
    their far-field phases."""
    spectrum = torch.fft.fft2(exit_waves, norm="ortho")
    gain = amplitudes / spectrum.abs().clamp_min(torch.finfo(amplitudes.dtype).tiny)
    return torch.fft.ifft2(spectrum * gain, norm="ortho")


def probe_inverse(probe: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """``conj(P) / (|P|² + ε |P|²max)`` on ``support``, zero off it: divides an exit wave by the
    probe where the probe is strong enough to say something."""
    power = probe.abs().square()
    return probe.conj() / (power + EPSILON * power.max()) * support


def object_projection(exit_waves: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """The passive object that best explains ``exit_waves``: ``inverse · ψ`` (``inverse`` from
    :func:`probe_inverse`), its modulus clipped to 1."""
    estimate = exit_waves * inverse
    return estimate / estimate.abs().clamp_min(1.0)


def retrieve_patches(
    amplitudes: torch.Tensor,
    probe: torch.Tensor,
    support: torch.Tensor,
    iterations: int,
    beta: float = 0.8,
) -> torch.Tensor:
    """Object patches (..., N, N) complex retrieved from each pattern's far-field ``amplitudes``
    (..., N, N), centred as :func:`ptypinn.physics.forward.far_field` returns them, starting from
    an object of ones on ``support`` (N, N); each iteration's object is ``P_S P_M ψ``.
    ``iterations`` ≥ 0 (0 returns the start)."""
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    probe = probe.to(torch.complex64)
    support = support.to(probe.real.dtype)
    measured = torch.fft.ifftshift(amplitudes.to(probe.real.dtype), dim=(-2, -1))
    inverse = probe_inverse(probe, support)
    obj = support.to(probe.dtype).expand(measured.shape)
    psi = probe * obj
    for _ in range(iterations):
        fitted = fourier_projection(psi, measured)
        obj = object_projection(fitted, inverse)
        if beta:
            reflected = probe * object_projection(2 * fitted - psi, inverse)
            psi = beta * (psi + reflected - fitted) + (1 - beta) * probe * obj
        else:
            psi = probe * obj
    return obj
