"""Phase retrieval with a known probe, of single diffraction patterns or of overlapping groups.

The exit wave ``ψ = P·O`` must have the measured far-field amplitude (the Fourier constraint,
:func:`fourier_projection`) and come from an object that lives on a support and is passive,
``|O| ≤ 1`` (the object constraint).

* :func:`retrieve_patches` retrieves each pattern alone, with no overlap
  (:func:`object_projection`): a real-space first guess per pattern (what PtychoPINN's
  ``inputs: retrieval`` gives its generator) and, stitched, a yardstick for any method that works
  pattern by pattern.
* :func:`retrieve_groups` retrieves a group of C overlapping patterns on one shared canvas
  (:class:`GroupProjection`: the object that best explains all C exit waves at once, placed and
  cut with :mod:`ptypinn.physics.canvas`), so its C patches share one phase reference and one
  twin state: what ``inputs: group_retrieval`` gives a gridsize-g generator, and the group
  yardstick of ``benchmarks/group_retrieval.py``. With C = 1 it is :func:`retrieve_patches`.

The support is the probe's footprint, ``|P|² ≥ SUPPORT_THRESHOLD · max |P|²``
(:func:`retrieval_support`): it is centred where the probe is, as wide as the light, and follows
any probe (a centred window of even width would sit half a pixel off the probe's centre and bias
the retrieved object by as much).

The iteration is relaxed averaged alternating reflections with the object constraint applied
last: ``ψ ← β (ψ + P_S(2 P_M ψ − ψ) − P_M ψ) + (1 − β) P_S P_M ψ`` with ``P_M`` the Fourier and
``P_S`` the object projection. ``β = 0`` is error reduction; ``β ≈ 0.8`` escapes its stagnation
and converges in fewer iterations (``benchmarks/single_pattern_retrieval.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ptypinn.physics.canvas import Placement, canvas_size
from ptypinn.physics.scan import probe_footprint

SUPPORT_THRESHOLD = 1e-2
"""The retrieval's support: where ``|P|²`` is at least this share of its peak."""

EPSILON = 1e-2
"""Regularises ``conj(P) / (|P|² + ε)`` where the probe is weak (relative to a peak |P| of 1)."""


def inverse_modulus(values: torch.Tensor, floor: float) -> torch.Tensor:
    """``1 / max(|z|, floor)`` of complex ``values``, from ``Re² + Im²`` (several times faster on
    the CPU than the complex ``abs``, and differentiable everywhere)."""
    return (values.real.square() + values.imag.square()).clamp_min(floor * floor).rsqrt()


def fourier_projection(exit_waves: torch.Tensor, amplitudes: torch.Tensor) -> torch.Tensor:
    """Give ``exit_waves`` (..., N, N) the far-field ``amplitudes`` (uncentred, FFT order), keeping
    their far-field phases."""
    spectrum = torch.fft.fft2(exit_waves, norm="ortho")
    floor = math.sqrt(torch.finfo(amplitudes.dtype).tiny)  # its square is still a normal float
    return torch.fft.ifft2(spectrum * (amplitudes * inverse_modulus(spectrum, floor)), norm="ortho")


def probe_inverse(probe: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """``conj(P) / (|P|² + ε |P|²max)`` on ``support``, zero off it: divides an exit wave by the
    probe where the probe is strong enough to say something."""
    power = probe.abs().square()
    return probe.conj() / (power + EPSILON * power.max()) * support


def object_projection(exit_waves: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """The passive object that best explains ``exit_waves``: ``inverse · ψ`` (``inverse`` from
    :func:`probe_inverse`), its modulus clipped to 1."""
    return passive(exit_waves * inverse)


def passive(estimate: torch.Tensor) -> torch.Tensor:
    """``estimate`` with its modulus clipped to 1."""
    return estimate * inverse_modulus(estimate, 1.0)


def retrieval_support(probe: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The probe's footprint at :data:`SUPPORT_THRESHOLD` as a float32 (N, N) mask."""
    if isinstance(probe, torch.Tensor):
        probe = probe.detach().cpu().numpy()
    mask, _ = probe_footprint(probe, SUPPORT_THRESHOLD)
    return torch.from_numpy(mask.astype(np.float32))


def _check(iterations: int, beta: float) -> None:
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must be in [0, 1], got {beta}")


def _relaxed_reflections(
    start: torch.Tensor,
    probe: torch.Tensor,
    measured: torch.Tensor,
    project: Callable[[torch.Tensor], torch.Tensor],
    iterations: int,
    beta: float,
) -> torch.Tensor:
    """The iteration of the module docstring from the object patches ``start``; ``project`` maps
    exit waves to the object patches that best explain them (the object constraint ``P_S``,
    without the probe). Returns the last ``P_S P_M ψ``."""
    obj = start
    psi = probe * obj
    for _ in range(iterations):
        fitted = fourier_projection(psi, measured)
        if beta:
            step = psi - fitted
            # both object projections in one call: a group's canvas is built once per iteration
            both = project(torch.cat((fitted, fitted - step)))
            obj = both[: len(psi)]
            # β (ψ + P·R − f) + (1 − β) P·O with R = P_S(2f − ψ), O = P_S f, in three passes
            psi = step.mul_(beta).addcmul_(probe, torch.lerp(obj, both[len(psi) :], beta))
        else:
            obj = project(fitted)
            psi = probe * obj
    return obj


def _prepared(
    amplitudes: torch.Tensor, probe: torch.Tensor, support: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    probe = probe.to(torch.complex64)
    support = support.to(device=probe.device, dtype=probe.real.dtype)
    measured = torch.fft.ifftshift(amplitudes.to(probe.real.dtype), dim=(-2, -1))
    return probe, support, measured


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
    _check(iterations, beta)
    probe, support, measured = _prepared(amplitudes, probe, support)
    inverse = probe_inverse(probe, support)
    start = support.to(probe.dtype).expand(measured.shape)
    return _relaxed_reflections(
        start, probe, measured, lambda waves: object_projection(waves, inverse), iterations, beta
    )


class GroupProjection:
    """The object constraint of a group: C exit waves (B, C, N, N) → the passive object on the
    group's canvas that explains them best, ``O = Σ T(conj(P)·s·ψ) / (Σ T(|P|²·s) + ε |P|²max)``
    (``T``: a member moved to its offset, ``s`` the support), its modulus clipped to 1, and cut
    back into C patches on the support. For one member at offset 0 it is
    :func:`object_projection` with :func:`probe_inverse`."""

    def __init__(self, probe: torch.Tensor, support: torch.Tensor, offsets: torch.Tensor) -> None:
        self.n = probe.shape[-1]
        self.placement = Placement(offsets, self.n, canvas_size(self.n, offsets))
        self.support = support
        self.weighted_conj = probe.conj() * support
        power = probe.abs().square()
        self.coverage = self.placement.place(
            (power * support).expand(*offsets.shape[:2], self.n, self.n)
        ) + (EPSILON * power.max())
        self.inverse_coverage = self.coverage.reciprocal()

    def canvas(self, waves: torch.Tensor) -> torch.Tensor:
        """The passive object (B', size, size) explaining ``waves``; B' may be a multiple of B
        (several sets of exit waves of the same groups)."""
        inverse, repeat = self.inverse_coverage, waves.shape[0] // self.coverage.shape[0]
        if repeat > 1:
            inverse = inverse.repeat(repeat, 1, 1)
        return passive(self.placement.place(waves * self.weighted_conj) * inverse)

    def __call__(self, waves: torch.Tensor) -> torch.Tensor:
        return self.placement.extract(self.canvas(waves)) * self.support


def object_constraint(
    probe: torch.Tensor, support: torch.Tensor, offsets: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The object constraint of patterns (B, C, N, N) at ``offsets`` (B, C, 2): each group's
    canvas (:class:`GroupProjection`) for C ≥ 2, each pattern's own :func:`object_projection`
    for C = 1. Differentiable: one constrained update is
    ``constraint(fourier_projection(P·O, measured))``."""
    if offsets.shape[1] > 1:
        return GroupProjection(probe, support, offsets)
    inverse = probe_inverse(probe, support)
    return lambda waves: object_projection(waves, inverse)


def retrieve_groups(
    amplitudes: torch.Tensor,
    offsets: torch.Tensor,
    probe: torch.Tensor,
    support: torch.Tensor,
    iterations: int,
    beta: float = 0.8,
) -> torch.Tensor:
    """Object patches (B, C, N, N) complex retrieved jointly from each group's C far-field
    ``amplitudes`` (B, C, N, N, centred) at ``offsets`` (B, C, 2) = member − centroid (x, y) px,
    with :class:`GroupProjection` as the object constraint, from an object of ones wherever the
    group's supports reach. ``iterations`` ≥ 0 (0 returns the start)."""
    _check(iterations, beta)
    if amplitudes.ndim != 4 or offsets.shape != (*amplitudes.shape[:2], 2):
        raise ValueError(
            "retrieve_groups expects amplitudes (B, C, N, N) and offsets (B, C, 2); got "
            f"{tuple(amplitudes.shape)} and {tuple(offsets.shape)}"
        )
    probe, support, measured = _prepared(amplitudes, probe, support)
    offsets = offsets.to(device=probe.device, dtype=probe.real.dtype)
    project = GroupProjection(probe, support, offsets)
    covered = project.coverage > EPSILON * probe.abs().square().max()
    start = project.placement.extract(covered.to(probe.dtype)) * support
    return _relaxed_reflections(start, probe, measured, project, iterations, beta)
