"""The user's object and probe (NPZ files): the one reader every command uses.

* the object is ``objectGuess``: a finite, non-zero, 2-D complex array;
* the probe is ``probeGuess``: a finite, non-zero, complex ``N x N`` array, ``N`` the patch size.

Each failure is one :class:`~ptypinn.io.dataset.DatasetError` that names the file, states the
contract and says what the file holds. Both arrays come back as complex64.
"""

from __future__ import annotations

import os

import numpy as np

from ptypinn.io.dataset import DatasetError, check_finite, read_npz


def _contract_problem(name: str, array: np.ndarray, shape_ok: bool) -> str | None:
    """What breaks the complex, finite, non-zero contract (``None`` if nothing does); a value
    that does not fit complex64 counts as infinite."""
    if not shape_ok:
        return f"{name} is {array.dtype} {array.shape}"
    if not np.iscomplexobj(array):
        return f"{name} is real ({array.dtype})"
    with np.errstate(over="ignore"):
        values = array.astype(np.complex64)
    problems: list[str] = []
    check_finite(name, values, problems)
    if problems:
        return problems[0]
    if not np.any(values):
        return f"{name} is zero everywhere (it would diffract no photons)"
    return None


def _array(path: str | os.PathLike, key: str) -> np.ndarray:
    arrays = read_npz(path)
    if key not in arrays:
        raise DatasetError(f"{path}: no '{key}' array (it holds {sorted(arrays) or 'nothing'})")
    return arrays[key]


def read_object(path: str | os.PathLike) -> np.ndarray:
    """``objectGuess`` of an NPZ file, checked: a finite, non-zero, 2-D complex array."""
    obj = _array(path, "objectGuess")
    problem = _contract_problem("objectGuess", obj, obj.ndim == 2)
    if problem:
        raise DatasetError(
            f"{path}: objectGuess must be a finite, non-zero, 2-D complex array; {problem}"
        )
    return obj.astype(np.complex64)


def read_probe(path: str | os.PathLike, size: int) -> np.ndarray:
    """``probeGuess`` of an NPZ file, checked: a finite, non-zero, complex ``size x size`` array
    (``size`` is the patch size N: a probe is sampled on the detector's real-space grid)."""
    probe = _array(path, "probeGuess")
    problem = _contract_problem("probeGuess", probe, probe.shape == (size, size))
    if problem:
        raise DatasetError(
            f"{path}: probeGuess must be a finite, non-zero, complex {size}x{size} array "
            f"(N x N, N = the patch size {size}); {problem}"
        )
    return probe.astype(np.complex64)


def has_probe(path: str | os.PathLike) -> bool:
    """Whether an NPZ file holds a ``probeGuess`` (read without loading the arrays)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return "probeGuess" in npz.files
    except (OSError, ValueError):
        return False  # the readers above say what is wrong with the file
