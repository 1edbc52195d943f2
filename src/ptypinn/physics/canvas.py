"""A group's shared canvas: patches placed at their offsets, summed, and cut out again.

Shapes: patches (B, C, N, N), offsets (B, C, 2) = member position − group centroid as (x, y)
pixels. A canvas of side ``size`` holds a group centred on pixel ``size // 2``; a member at
offset ``d`` covers the N × N window centred on ``size // 2 + d``, placed and cut with the one
sub-pixel convention of :func:`ptypinn.physics.forward.translate` and
:func:`ptypinn.physics.forward.extract_patches`. These are the overlap constraint of a
gridsize ≥ 2 PtychoPINN and the object update of the group retrieval alike.

Bilinear interpolation by an offset ``d = k + f`` (integer ``k``, fraction ``0 ≤ f < 1``) is
exactly a blend of two neighbouring pixels along each axis followed by an integer move. So
:func:`place` blends each patch into an (N + 1) × (N + 1) block and scatter-adds it at its integer
corner, and :func:`extract_from_canvas` gathers an (N + 1) × (N + 1) block and blends it back: the
same numbers as sampling the whole canvas with ``translate``, for the cost of the patch alone.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def canvas_size(patch_size: int, offsets: torch.Tensor) -> int:
    """Smallest even canvas that holds every member of every group without clipping."""
    reach = math.ceil(float(offsets.abs().max())) if offsets.numel() else 0
    return patch_size + 2 * (reach + 1)


def _blocks(
    offsets: torch.Tensor, patch_size: int, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat canvas indices (B, C·(N+1)²) of each member's (N + 1)-block, whose corner is where
    pixel 0 of the patch lands, and the fractions (B, C, 1, 1) of x and y."""
    if offsets.numel() and float(offsets.abs().max()) > (size - patch_size) // 2 - 1:
        raise ValueError(
            f"offsets up to {float(offsets.abs().max()):.2f} px do not fit a {size} px canvas for "
            f"{patch_size} px patches (see canvas_size)"
        )
    corner = offsets + (size - patch_size) // 2
    whole = corner.floor()
    fraction = (corner - whole)[..., None, None]
    steps = torch.arange(patch_size + 1, device=offsets.device)
    rows = whole[..., 1, None].long() + steps  # (B, C, N+1)
    cols = whole[..., 0, None].long() + steps
    flat = (rows[..., :, None] * size + cols[..., None, :]).clamp_(0, size * size - 1)
    return flat.flatten(1), fraction[:, :, 0], fraction[:, :, 1]


def _real(tensor: torch.Tensor) -> tuple[torch.Tensor, int]:
    """A complex tensor as its real view (..., 2) and the number of trailing axes that adds (the
    blends below multiply real numbers, several times faster than complex by real)."""
    return (torch.view_as_real(tensor), 1) if tensor.is_complex() else (tensor, 0)


def _back(tensor: torch.Tensor, extra: int) -> torch.Tensor:
    return torch.view_as_complex(tensor.contiguous()) if extra else tensor


def place(patches: torch.Tensor, offsets: torch.Tensor, size: int) -> torch.Tensor:
    """Sum of each group's C patches moved to their offsets on a ``size`` canvas: (B, size,
    size)."""
    batch, _, n, _ = patches.shape
    index, fx, fy = _blocks(offsets, n, size)
    padded, extra = _real(nn.functional.pad(patches, (1, 1, 1, 1)))
    fx, fy = fx.reshape(*fx.shape, *(1,) * extra), fy.reshape(*fy.shape, *(1,) * extra)
    x, y = -1 - extra, -2 - extra  # the column and row axes
    # block pixel i holds (1 − f)·p(i) + f·p(i − 1): the bilinear sample of the moved patch
    blended = (1 - fx) * padded.narrow(x, 1, n + 1) + fx * padded.narrow(x, 0, n + 1)
    blended = (1 - fy) * blended.narrow(y, 1, n + 1) + fy * blended.narrow(y, 0, n + 1)
    values = _back(blended, extra).flatten(1)
    canvas = torch.zeros(batch, size * size, dtype=patches.dtype, device=patches.device)
    return canvas.scatter_add(1, index, values).reshape(batch, size, size)


def merge_patches(
    patches: torch.Tensor, weights: torch.Tensor, offsets: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample weighted average of C patches placed at their offsets on a ``size`` canvas.

    ``patches`` (B, C, N, N) complex, ``weights`` (N, N) real (where each patch is valid),
    ``offsets`` (B, C, 2). Returns the canvas (B, size, size) and its summed weight. Each patch
    contributes ``T(w·patch) / Σ T(w)``: the numerator is co-masked with the weight, so pixels no
    patch covers are exactly zero rather than amplified.
    """
    numerator = place(patches * weights, offsets, size)
    count = place(weights.expand(patches.shape), offsets, size)
    covered = count > 1e-6
    canvas = torch.where(
        covered,
        numerator / torch.where(covered, count, torch.ones_like(count)),
        torch.zeros_like(numerator),
    )
    return canvas, count


def extract_from_canvas(
    canvas: torch.Tensor, offsets: torch.Tensor, patch_size: int
) -> torch.Tensor:
    """Re-cut C patches (B, C, N, N) centred on each member's offset from the canvas centre."""
    batch, size = canvas.shape[0], canvas.shape[-1]
    index, fx, fy = _blocks(offsets, patch_size, size)
    channels, side = offsets.shape[1], patch_size + 1
    block = canvas.reshape(batch, size * size).gather(1, index).reshape(batch, channels, side, side)
    block, extra = _real(block)
    fx, fy = fx.reshape(*fx.shape, *(1,) * extra), fy.reshape(*fy.shape, *(1,) * extra)
    x, y = -1 - extra, -2 - extra
    # patch pixel r samples the canvas between block pixels r and r + 1
    block = (1 - fx) * block.narrow(x, 0, patch_size) + fx * block.narrow(x, 1, patch_size)
    block = (1 - fy) * block.narrow(y, 0, patch_size) + fy * block.narrow(y, 1, patch_size)
    return _back(block, extra)
