"""Stitching: shift-and-add object patches into one image, normalised by the summed weights.

Each patch (N × N, centred on its scan position as in :func:`physics.extract_patches`) is moved
by the fractional part of its position with the same bilinear :func:`physics.translate` used
everywhere, then added at the integer part. The image is ``Σ T(w·patch) / Σ T(w)`` wherever the
summed weight exceeds ``min_weight``, and zero elsewhere.
"""

from __future__ import annotations

import numpy as np
import torch

from .physics import translate


def stitch(
    patches: np.ndarray, positions: np.ndarray, shape: tuple[int, int], weight: np.ndarray, min_weight: float = 1e-3, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Stitch ``patches`` (n, N, N) complex at ``positions`` (n, 2) as (x, y) onto an ``shape`` grid.

    ``weight`` (N, N) says how much each patch pixel counts (e.g. |P|² on the predicted window).
    Returns the complex image and the summed weight map. Patches may reach past the grid edge;
    the parts outside are dropped.
    """
    n = patches.shape[-1]
    height, width = shape
    pad = n + 1
    numerator = np.zeros((height + 2 * pad, width + 2 * pad), dtype=np.complex128)
    total = np.zeros(numerator.shape, dtype=np.float64)
    whole = np.floor(positions).astype(np.int64)
    fraction = torch.from_numpy(positions - whole)
    weight_t = torch.from_numpy(np.asarray(weight, dtype=np.float32))
    for start in range(0, patches.shape[0], chunk):
        part = slice(start, start + chunk)
        block = torch.from_numpy(np.asarray(patches[part], dtype=np.complex64))
        shifts = fraction[part]
        moved = translate(block * weight_t, shifts).numpy()
        moved_weight = translate(weight_t.expand(block.shape[0], n, n).contiguous(), shifts).numpy()
        for (x, y), value, w in zip(whole[part], moved, moved_weight):
            top, left = y - n // 2 + pad, x - n // 2 + pad
            if top < 0 or left < 0 or top + n > numerator.shape[0] or left + n > numerator.shape[1]:
                continue
            numerator[top : top + n, left : left + n] += value
            total[top : top + n, left : left + n] += w
    numerator = numerator[pad : pad + height, pad : pad + width]
    total = total[pad : pad + height, pad : pad + width]
    covered = total > min_weight
    image = np.zeros((height, width), dtype=np.complex64)
    image[covered] = numerator[covered] / total[covered]
    return image, total.astype(np.float32)
