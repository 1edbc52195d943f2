"""The embedded default object: built from images that ship inside scikit-image (no download).

Amplitude comes from ``camera`` (a transmission between 0.5 and 1), phase from the grey-level
``astronaut`` (about +-0.6 pi), so amplitude and phase carry unrelated structure and the phase
range is that of a realistic thin sample.
"""

from __future__ import annotations

import math

import numpy as np
from skimage import color, data, transform

AMPLITUDE_RANGE = (0.5, 1.0)
PHASE_RANGE = (-0.6 * math.pi, 0.6 * math.pi)


def _rescale(image: np.ndarray, size: int, low: float, high: float) -> np.ndarray:
    resized = transform.resize(image.astype(np.float64), (size, size), anti_aliasing=True)
    span = resized.max() - resized.min()
    return low + (high - low) * (resized - resized.min()) / span


def default_object(size: int) -> np.ndarray:
    """Complex64 ``size x size`` test object: amplitude from ``camera``, phase from
    ``astronaut``."""
    if size < 8:
        raise ValueError(f"object size must be at least 8 px, got {size}")
    amplitude = _rescale(data.camera(), size, *AMPLITUDE_RANGE)
    phase = _rescale(color.rgb2gray(data.astronaut()), size, *PHASE_RANGE)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)
