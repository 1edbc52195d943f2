"""A group's shared canvas: patches placed at their offsets, summed, and cut out again.

Shapes: patches (B, C, N, N), offsets (B, C, 2) = member position − group centroid as (x, y)
pixels. A canvas of side ``size`` holds a group centred on pixel ``size // 2``; a member at
offset ``d`` covers the N × N window centred on ``size // 2 + d``, placed and cut with the one
sub-pixel convention of :func:`ptypinn.physics.forward.translate` and
:func:`ptypinn.physics.forward.extract_patches`. These are the overlap constraint of a
gridsize ≥ 2 PtychoPINN and the object update of the group retrieval alike.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ptypinn.physics.forward import extract_patches, translate


def canvas_size(patch_size: int, offsets: torch.Tensor) -> int:
    """Smallest even canvas that holds every member of every group without clipping."""
    reach = math.ceil(float(offsets.abs().max())) if offsets.numel() else 0
    return patch_size + 2 * (reach + 1)


def _pad_to(images: torch.Tensor, size: int) -> torch.Tensor:
    before = (size - images.shape[-1]) // 2
    after = size - images.shape[-1] - before
    return nn.functional.pad(images, (before, after, before, after))


def place(patches: torch.Tensor, offsets: torch.Tensor, size: int) -> torch.Tensor:
    """Sum of each group's C patches moved to their offsets on a ``size`` canvas: (B, size,
    size)."""
    batch, channels, n, _ = patches.shape
    flat = _pad_to(patches.reshape(batch * channels, n, n), size)
    moved = translate(flat, offsets.reshape(batch * channels, 2))
    return moved.reshape(batch, channels, size, size).sum(1)


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
    centre = float(canvas.shape[-1] // 2)
    return extract_patches(canvas, offsets + centre, patch_size)
