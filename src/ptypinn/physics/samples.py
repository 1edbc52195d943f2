"""The embedded default object: built from images that ship inside scikit-image (no download).

Amplitude comes from ``camera`` (a transmission between 0.5 and 1), phase from the grey-level
``astronaut`` (about +-0.6 pi), so amplitude and phase carry unrelated structure and the phase
range is that of a realistic thin sample.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from skimage import color, data, draw, filters, transform

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


CorpusKind = Literal["pictures", "grf", "dead_leaves", "lines"]
CORPUS_KINDS: tuple[CorpusKind, ...] = ("pictures", "grf", "dead_leaves", "lines")

# Grey-level pictures that ship with scikit-image, never ``camera`` or ``astronaut``: the default
# object is made of those, and a training corpus must not contain the object it is scored on.
CORPUS_PICTURES = (
    "brick",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)


def _grey_picture(name: str) -> np.ndarray:
    image = getattr(data, name)()
    return color.rgb2gray(image[..., :3]) if image.ndim == 3 else image.astype(np.float64)


def _picture_field(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop (a quarter to all of the short side) of a corpus picture, randomly
    flipped and turned, resized to ``size``."""
    image = _grey_picture(CORPUS_PICTURES[rng.integers(len(CORPUS_PICTURES))])
    side = int(rng.integers(min(image.shape) // 4, min(image.shape) + 1))
    top = int(rng.integers(image.shape[0] - side + 1))
    left = int(rng.integers(image.shape[1] - side + 1))
    crop = np.rot90(image[top : top + side, left : left + side], k=int(rng.integers(4)))
    crop = crop[:, ::-1] if rng.integers(2) else crop
    return transform.resize(crop, (size, size), anti_aliasing=True)


def _gaussian_random_field(size: int, rng: np.random.Generator) -> np.ndarray:
    """White noise filtered to a power spectrum ``k^-β`` with β drawn in [2, 4]."""
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
    k[0, 0] = np.inf
    amplitude = k ** (-rng.uniform(2.0, 4.0) / 2)
    noise = np.fft.fft2(rng.standard_normal((size, size)))
    return np.fft.ifft2(noise * amplitude).real


def _dead_leaves(size: int, rng: np.random.Generator) -> np.ndarray:
    """Occluding discs of random grey levels with radii from a ``r^-3`` law (dead leaves)."""
    image = np.full((size, size), rng.uniform())
    rows, cols = np.mgrid[:size, :size]
    r_min, r_max = 2.0, size / 6
    for _ in range(int(4 * size)):
        u = rng.uniform()
        radius = 1 / np.sqrt(u / r_min**2 + (1 - u) / r_max**2)
        cy, cx = rng.uniform(0, size, 2)
        image[(rows - cy) ** 2 + (cols - cx) ** 2 < radius**2] = rng.uniform()
    return image


def _lines(size: int, rng: np.random.Generator) -> np.ndarray:
    """Random anti-aliased line segments, lightly blurred."""
    image = np.zeros((size, size))
    for _ in range(int(size // 2)):
        r0, c0, r1, c1 = rng.integers(0, size, 4)
        rr, cc, value = draw.line_aa(r0, c0, r1, c1)
        image[rr, cc] = np.maximum(image[rr, cc], value * rng.uniform(0.3, 1.0))
    return filters.gaussian(image, sigma=rng.uniform(0.5, 1.5))


_FIELDS = {
    "pictures": _picture_field,
    "grf": _gaussian_random_field,
    "dead_leaves": _dead_leaves,
    "lines": _lines,
}


def _to_range(image: np.ndarray, low: float, high: float) -> np.ndarray:
    span = image.max() - image.min()
    unit = (image - image.min()) / span if span > 0 else np.zeros_like(image)
    return low + (high - low) * unit


def procedural_object(kind: CorpusKind, size: int, rng: np.random.Generator) -> np.ndarray:
    """A complex64 ``size x size`` training object of ``kind`` with the default object's ranges:
    amplitude and phase are two independent fields of that kind."""
    if kind not in _FIELDS:
        raise ValueError(f"unknown corpus kind {kind!r}; choose from {', '.join(CORPUS_KINDS)}")
    field = _FIELDS[kind]
    amplitude = _to_range(field(size, rng), *AMPLITUDE_RANGE)
    phase = _to_range(field(size, rng), *PHASE_RANGE)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)
