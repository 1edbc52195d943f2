"""How much memory one read may claim: files state their array shapes in headers, and a shape is
checked against this limit before any array is allocated.

The limit is half of the machine's physical memory (:func:`memory_limit_bytes`); an array whose
header claims more (an NPZ member, an HDF5 dataset, a scan a design would simulate) is refused
with a message that names it, its shape and the limit, before anything is read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

MEMORY_FRACTION = 0.5  # of the physical memory, for all the arrays of one file together


class TooLargeError(ValueError):
    """An array (or a set of arrays) that would not fit in the memory this machine allows."""


def memory_limit_bytes() -> int:
    """Bytes one read may allocate: half of the physical memory (8 GiB where it is unknown)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 16 << 30
    return int(total * MEMORY_FRACTION)


def format_bytes(count: float) -> str:
    """``count`` bytes in the largest binary unit below it (``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(count) < 1024 or unit == "EiB":
            return f"{count:.3g} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def claimed_bytes(shape: Sequence[int], itemsize: int) -> int:
    """Bytes of an array of ``shape`` with ``itemsize``-byte elements (exact, never overflows)."""
    return math.prod(int(side) for side in shape) * int(itemsize)


def check_allocation(nbytes: int, what: str) -> None:
    """Refuse ``what`` (e.g. ``"x.npz: diffraction (10**9, 64, 64) float32"``) when it needs more
    than :func:`memory_limit_bytes`."""
    limit = memory_limit_bytes()
    if nbytes > limit:
        raise TooLargeError(
            f"{what} needs {format_bytes(nbytes)}, more than the {format_bytes(limit)} "
            "allowed here (half of this machine's memory)"
        )
