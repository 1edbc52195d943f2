"""A group's shared canvas: patches placed at their offsets, summed, and cut out again.

Shapes: patches (B, C, N, N), offsets (B, C, 2) = member position − group centroid as (x, y)
pixels. A canvas of side ``size`` holds a group centred on pixel ``size // 2``; a member at
offset ``d`` covers the N × N window centred on ``size // 2 + d``, placed and cut with the one
sub-pixel convention of :func:`ptypinn.physics.forward.translate` and
:func:`ptypinn.physics.forward.extract_patches`. These are the overlap constraint of a
gridsize ≥ 2 PtychoPINN and the object update of the group retrieval alike.

Bilinear interpolation by an offset ``d = k + f`` (integer ``k``, fraction ``0 ≤ f < 1``) is
exactly a blend of two neighbouring pixels along each axis followed by an integer move. So
:meth:`Placement.place` blends each patch into an (N + 1) × (N + 1) block and scatter-adds it at
its integer corner, and :meth:`Placement.extract` gathers an (N + 1) × (N + 1) block and blends it
back: the same numbers as sampling the whole canvas with ``translate``, for the cost of the patch
alone. A :class:`Placement` holds the blocks and fractions of one set of offsets, so an iteration
that places and cuts at the same offsets again and again computes them once; :func:`place` and
:func:`extract_from_canvas` are the one-off forms.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def canvas_size(patch_size: int, offsets: torch.Tensor) -> int:
    """Smallest even canvas that holds every member of every group without clipping."""
    reach = math.ceil(float(offsets.abs().max())) if offsets.numel() else 0
    return patch_size + 2 * (reach + 1)


class Placement:
    """Where each group's members sit on a ``size`` canvas for ``patch_size`` patches: each
    member's (N + 1)-block of flat canvas indices, whose corner is where pixel 0 of the patch
    lands, and its x and y fractions. Computed once, it places and cuts patches at the same
    offsets as often as needed (the iterations of a retrieval), also several sets of them at once
    (a batch of ``k·B`` groups: the B groups k times over)."""

    def __init__(self, offsets: torch.Tensor, patch_size: int, size: int) -> None:
        if offsets.numel() and float(offsets.abs().max()) > (size - patch_size) // 2 - 1:
            raise ValueError(
                f"offsets up to {float(offsets.abs().max()):.2f} px do not fit a {size} px canvas "
                f"for {patch_size} px patches (see canvas_size)"
            )
        self.patch_size, self.size = patch_size, size
        corner = offsets + (size - patch_size) // 2
        whole = corner.floor()
        # (B, C, 1, 1, 1): broadcast over a block's rows, columns and real and imaginary parts
        fraction = (corner - whole)[..., None, None, None]
        self.fx, self.fy = fraction[:, :, 0], fraction[:, :, 1]
        steps = torch.arange(patch_size + 1, device=offsets.device)
        rows = whole[..., 1, None].long() + steps  # (B, C, N+1)
        cols = whole[..., 0, None].long() + steps
        flat = (rows[..., :, None] * size + cols[..., None, :]).clamp_(0, size * size - 1)
        self.index = flat.flatten(1)

    def _tiled(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The indices and fractions for a batch of ``batch`` groups."""
        repeat = batch // len(self.index)
        if repeat == 1:
            return self.index, self.fx, self.fy
        tile = (repeat, *(1,) * (self.fx.ndim - 1))
        return self.index.repeat(repeat, 1), self.fx.repeat(tile), self.fy.repeat(tile)

    def place(self, patches: torch.Tensor) -> torch.Tensor:
        """Sum of each group's C patches (B, C, N, N) moved to their offsets: (B, size, size)."""
        index, fx, fy = self._tiled(len(patches))
        padded = _real(nn.functional.pad(patches, (1, 1, 1, 1)))
        fx, fy = fx.to(padded.dtype), fy.to(padded.dtype)
        # block pixel i holds (1 − f)·p(i) + f·p(i − 1): the bilinear sample of the moved patch
        blended = torch.lerp(padded[..., :, 1:, :], padded[..., :, :-1, :], fx)
        blended = torch.lerp(blended[..., 1:, :, :], blended[..., :-1, :, :], fy)
        values = _back(blended, patches).flatten(1)
        canvas = values.new_zeros(len(values), self.size * self.size)
        return canvas.scatter_add_(1, index, values).reshape(-1, self.size, self.size)

    def extract(self, canvas: torch.Tensor) -> torch.Tensor:
        """Re-cut the C patches (B, C, N, N) centred on each member's offset from ``canvas``
        (B, size, size)."""
        index, fx, fy = self._tiled(len(canvas))
        n, side = self.patch_size, self.patch_size + 1
        gathered = canvas.reshape(len(canvas), -1).gather(1, index)
        block = _real(gathered.reshape(len(canvas), -1, side, side))
        fx, fy = fx.to(block.dtype), fy.to(block.dtype)
        # patch pixel r samples the canvas between block pixels r and r + 1
        block = torch.lerp(block[..., :, :n, :], block[..., :, 1:, :], fx)
        block = torch.lerp(block[..., :n, :, :], block[..., 1:, :, :], fy)
        return _back(block, canvas)


def _real(tensor: torch.Tensor) -> torch.Tensor:
    """A complex tensor as its real view (..., 2), a real one with a trailing axis of one: the
    blends interpolate real numbers, several times faster than complex ones."""
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor[..., None]


def _back(tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`_real` for a result computed from ``like``."""
    return torch.view_as_complex(tensor.contiguous()) if like.is_complex() else tensor[..., 0]


def place(patches: torch.Tensor, offsets: torch.Tensor, size: int) -> torch.Tensor:
    """Sum of each group's C patches moved to their offsets on a ``size`` canvas: (B, size,
    size)."""
    return Placement(offsets, patches.shape[-1], size).place(patches)


def merge_patches(
    patches: torch.Tensor, weights: torch.Tensor, offsets: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample weighted average of C patches placed at their offsets on a ``size`` canvas.

    ``patches`` (B, C, N, N) complex, ``weights`` (N, N) real (where each patch is valid),
    ``offsets`` (B, C, 2). Returns the canvas (B, size, size) and its summed weight. Each patch
    contributes ``T(w·patch) / Σ T(w)``: the numerator is co-masked with the weight, so pixels no
    patch covers are exactly zero rather than amplified.
    """
    placement = Placement(offsets, patches.shape[-1], size)
    numerator = placement.place(patches * weights)
    count = placement.place(weights.expand(patches.shape))
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
    return Placement(offsets, patch_size, canvas.shape[-1]).extract(canvas)
