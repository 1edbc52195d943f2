"""The 8 symmetries of the square, applied to diffraction patterns, object patches and their
offsets alike (training augmentation), and whether a probe is unchanged by them.

A symmetry maps a measurement of the object to a measurement of the transformed object only when
the probe is unchanged by it: :func:`probe_symmetries` lists those of a probe.
"""

from __future__ import annotations

import numpy as np
import torch


def mirror(images: torch.Tensor, axis: int) -> torch.Tensor:
    """Reflect about pixel N/2 (index i -> -i mod N around it): for an exit wave and for its
    centred far field alike, since a reflected wave has the reflected spectrum."""
    return torch.roll(torch.flip(images, (axis,)), 1, axis)


def symmetry(
    images: torch.Tensor, offsets: torch.Tensor, code: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One of the 8 symmetries of the square (bit 0: mirror x, bit 1: mirror y, bit 2: transpose)
    applied to images (..., N, N) and offsets (..., 2) as (x, y)."""
    sign = torch.ones(2, dtype=offsets.dtype)
    if code & 1:
        images, sign[0] = mirror(images, -1), -1
    if code & 2:
        images, sign[1] = mirror(images, -2), -1
    offsets = offsets * sign
    if code & 4:
        images, offsets = images.transpose(-1, -2), offsets.flip(-1)
    return images.contiguous(), offsets


def probe_symmetries(probe: np.ndarray, tolerance: float = 1e-3) -> tuple[int, ...]:
    """The codes of the symmetries (:func:`symmetry`) that leave ``probe`` unchanged, to within
    ``tolerance`` of its peak: the identity (0) always, all 8 for a probe with the square's
    symmetry, and only the identity for an asymmetric one."""
    tensor = torch.from_numpy(np.asarray(probe))
    zero, peak = torch.zeros(2), float(tensor.abs().max())
    return tuple(
        code
        for code in range(8)
        if float((symmetry(tensor, zero, code)[0] - tensor).abs().max()) <= tolerance * peak
    )
