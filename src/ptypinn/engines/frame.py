"""Our object grid inside an iterative engine's padded object array.

Both engines keep the object in one array that must hold every probe window (and its bilinear
neighbour), including the windows of positions near or beyond the edge of our (H, W) grid. The
engine array is ours padded with ones (free space): :class:`ObjectFrame` says by how much,
:func:`to_engine_object` pads, :func:`from_engine_object` cuts our grid back out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ObjectFrame:
    """Our (H, W) object grid inside the engine's padded object array.

    ``pad`` is (top, bottom, left, right) in pixels. Engine pixel ``[r, c]`` is our pixel
    ``[r - top, c - left]``.
    """

    shape: tuple[int, int]
    pad: tuple[int, int, int, int]

    @classmethod
    def around(
        cls, positions_px: np.ndarray, patch_size: int, shape: tuple[int, int], margin: int = 1
    ) -> ObjectFrame:
        """The frame that holds every probe window of ``positions_px``, plus ``margin`` px on each
        side for the bilinear neighbour and for float32 rounding of the corner."""
        half = patch_size // 2
        x, y = np.asarray(positions_px, dtype=np.float64).T
        top = max(0, -math.floor(y.min() - half)) + margin
        left = max(0, -math.floor(x.min() - half)) + margin
        bottom = max(0, math.floor(y.max() - half) + patch_size - shape[0]) + margin
        right = max(0, math.floor(x.max() - half) + patch_size - shape[1]) + margin
        return cls(shape=(int(shape[0]), int(shape[1])), pad=(top, bottom, left, right))

    @property
    def engine_shape(self) -> tuple[int, int]:
        top, bottom, left, right = self.pad
        return self.shape[0] + top + bottom, self.shape[1] + left + right


def to_engine_object(obj: np.ndarray, frame: ObjectFrame) -> np.ndarray:
    """Our object padded with ones (free space) into the engine array, complex64."""
    top, bottom, left, right = frame.pad
    padding = ((top, bottom), (left, right))
    return np.pad(np.asarray(obj, dtype=np.complex64), padding, constant_values=1)


def from_engine_object(engine_obj: torch.Tensor | np.ndarray, frame: ObjectFrame) -> np.ndarray:
    """Our (H, W) grid cut out of the engine object, complex64."""
    top, _, left, _ = frame.pad
    height, width = frame.shape
    if isinstance(engine_obj, torch.Tensor):
        engine_obj = engine_obj.detach().cpu().numpy()
    return np.asarray(engine_obj)[top : top + height, left : left + width].astype(np.complex64)
