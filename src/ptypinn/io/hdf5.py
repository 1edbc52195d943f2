"""HDF5 plumbing shared by the CXI and ptychodus-product readers and writers.

* :class:`FormatError`: a file that cannot be read in the format asked for. Messages name the
  file and, where one is involved, the HDF5 path (``/group/dataset`` or ``/dataset@attribute``).
* :func:`open_hdf5`: open a file for reading, turning "missing" and "not HDF5" into
  :class:`FormatError`, and yield an :class:`HDF5Reader` whose look-ups raise that error too.
* :func:`write_hdf5`: write a new HDF5 file atomically (temporary file, then rename).
* :func:`plain_value`: attribute values as JSON types, for metadata.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from ptypinn.io.artifacts import OutputError, atomic_path
from ptypinn.io.limits import TooLargeError, check_allocation, claimed_bytes


class FormatError(ValueError):
    """A file that is missing, is not HDF5, or lacks or contradicts a field its format needs."""


class HDF5Reader:
    """Look-ups in an open HDF5 file whose failures are :class:`FormatError` naming the file and
    path."""

    def __init__(self, file: h5py.File, path: Path) -> None:
        self.file = file
        self.path = path

    def error(self, message: str, at: str | None = None) -> FormatError:
        where = f" at {at}" if at else ""
        return FormatError(f"{self.path}{where}: {message}")

    def find(self, *names: str) -> str | None:
        """The first of ``names`` that is a dataset in the file (soft links followed), else
        ``None``; a link that leads nowhere (a loop, a dangling external link) is an error."""
        for name in names:
            try:
                node = self.file.get(name)
            except (RuntimeError, KeyError, OSError) as error:
                raise self.error(f"the link cannot be followed: {error}", name) from None
            if isinstance(node, h5py.Dataset):
                return name
        return None

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape dataset ``name`` declares (nothing is read)."""
        return tuple(self.file[name].shape or ())

    def read(self, name: str, itemsize: int | None = None) -> np.ndarray:
        """The contents of dataset ``name``, after checking that its declared shape fits in memory
        (elements of ``itemsize`` bytes when it is converted, else its own dtype's)."""
        dataset = self.file[name]
        size = dataset.dtype.itemsize if itemsize is None else max(itemsize, dataset.dtype.itemsize)
        try:
            check_allocation(
                claimed_bytes(dataset.shape or (), size),
                f"{self.path} at {name}: shape {dataset.shape} {dataset.dtype}",
            )
        except TooLargeError as error:
            raise FormatError(str(error)) from None
        return np.asarray(dataset[()])

    def array(self, *names: str, what: str) -> np.ndarray:
        """The contents of the first dataset found among ``names``; ``what`` says what was
        wanted."""
        name = self.find(*names)
        if name is None:
            raise self.error(f"no {what}: looked for {' or '.join(names)}")
        return self.read(name)

    def optional_array(self, *names: str) -> np.ndarray | None:
        name = self.find(*names)
        return None if name is None else self.read(name)

    def scalar(self, *names: str, what: str) -> float:
        """A positive, finite number stored as a scalar (or one-element) dataset."""
        name = self.find(*names)
        if name is None:
            raise self.error(f"no {what}: looked for {' or '.join(names)}")
        return self.number(self.read(name), name, what)

    def attribute(
        self, owner: str, *keys: str, what: str, default: float | None = None, positive: bool = True
    ) -> float:
        """A number stored as attribute ``keys[0]`` (or a later alias) of dataset or group
        ``owner``."""
        if self.find(owner) is None and not isinstance(self.file.get(owner), h5py.Group):
            raise self.error(f"no {what}: {owner} does not exist")
        attrs = self.file[owner].attrs
        for key in keys:
            if key in attrs:
                return self.number(np.asarray(attrs[key]), f"{owner}@{key}", what, positive)
        if default is not None:
            return default
        names = " or ".join(f"{owner}@{key}" for key in keys)
        raise self.error(f"no {what}: looked for attribute {names}")

    def number(self, value: np.ndarray, at: str, what: str, positive: bool = True) -> float:
        """``value`` as one finite real number (and positive, unless told otherwise)."""
        if value.size != 1 or not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
            raise self.error(f"{what} must be one real number, got {value.dtype} {value.shape}", at)
        number = float(value.reshape(()))
        if not np.isfinite(number) or (positive and not number > 0):
            raise self.error(
                f"{what} must be a {'positive' if positive else 'finite'} number, got {number}", at
            )
        return number

    def finite(self, array: np.ndarray, at: str, what: str) -> np.ndarray:
        """``array``, after checking it holds no NaN or infinite value."""
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise self.error(f"{what} contains {bad} NaN or infinite values", at)
        return array

    def text(self, name: str) -> str | None:
        """A string dataset (bytes decoded as UTF-8), or ``None`` if absent."""
        value = self.optional_array(name)
        return None if value is None else str(plain_value(value.reshape(-1)[0]))


@contextlib.contextmanager
def open_hdf5(path: str | os.PathLike, kind: str) -> Iterator[HDF5Reader]:
    """Open ``path`` read-only; ``kind`` (e.g. ``"CXI"``) names the expected format in errors.

    A file that HDF5 cannot read through (truncated, damaged) is a :class:`FormatError` too.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"no such file: {path}")
    if not h5py.is_hdf5(path):
        raise FormatError(f"{path} is not an HDF5 file, so it cannot be a {kind} file")
    try:
        with h5py.File(path, "r") as file:
            yield HDF5Reader(file, path)
    except OSError as error:  # how h5py reports unreadable blocks
        raise FormatError(
            f"{path} is damaged or truncated, so it cannot be read as a {kind} file: {error}"
        ) from None


def _hdf5_reason(error: BaseException) -> str:
    """The system's reason in an HDF5 write error (``File too large``, ``No space left on
    device``), else its first line."""
    found = re.search(r"error message = '([^']*)'", str(error))
    return found.group(1) if found else str(error).strip().splitlines()[0]


@contextlib.contextmanager
def write_hdf5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """A new HDF5 file that replaces ``path`` only once it is completely written; a write the
    system refuses (a full disk: HDF5 reports it as ``OSError`` or, while closing the file, as
    ``RuntimeError``) is an :class:`OutputError` of one line, and nothing is left behind."""
    with atomic_path(path) as tmp:
        try:
            with h5py.File(tmp, "w") as file:
                yield file
        except (OSError, RuntimeError) as error:
            raise OutputError(f"cannot write {path}: {_hdf5_reason(error)}") from None


def plain_value(value: object) -> object:
    """An HDF5 attribute or dataset value in plain JSON types (bytes decoded as UTF-8)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list):
        return [plain_value(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, complex):
        return [value.real, value.imag]
    return value
