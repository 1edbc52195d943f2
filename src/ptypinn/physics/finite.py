"""Numerical failure is a failure: a loss or an image with NaN or infinite values is refused."""

from __future__ import annotations

import numpy as np


class NonFiniteError(ArithmeticError):
    """A computation produced NaN or infinite values; nothing built on them is kept."""


def require_finite(what: str, array: np.ndarray) -> np.ndarray:
    """``array``, after checking it holds no NaN or infinite value (``what`` names it)."""
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise NonFiniteError(f"{what} contains {bad} NaN or infinite values of {np.size(array)}")
    return array
