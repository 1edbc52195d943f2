"""Conversion between the files ptypinn reads and writes: canonical/reconstruction NPZ, CXI,
ptychodus product.

A file holds either a dataset (:class:`~ptypinn.io.dataset.PtychoDataset`: diffraction, positions,
probe, maybe an object) or a reconstruction (:class:`~ptypinn.io.product.Product`: object, probe,
positions, no diffraction). An NPZ holds a dataset when it has ``diffraction``, else a
reconstruction. CXI files hold datasets, ptychodus products hold reconstructions; a dataset
with an ``objectGuess`` can be written as a product, a reconstruction cannot become CXI.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path

from ptypinn.io.cxi import read_cxi, write_cxi
from ptypinn.io.dataset import (
    DatasetError,
    PtychoDataset,
    dataset_from_arrays,
    read_npz,
    save_dataset,
)
from ptypinn.io.hdf5 import FormatError
from ptypinn.io.product import (
    Product,
    product_from_arrays,
    read_product,
    write_product,
    write_product_npz,
)


class FileFormat(str, enum.Enum):
    npz = "npz"
    cxi = "cxi"
    product = "product"


SUFFIXES = {
    ".npz": FileFormat.npz,
    ".cxi": FileFormat.cxi,
    ".h5": FileFormat.product,
    ".hdf5": FileFormat.product,
}


def format_of(path: str | os.PathLike, given: FileFormat | None = None) -> FileFormat:
    """``given``, or the format its extension names (``.npz``, ``.cxi``, ``.h5``/``.hdf5`` =
    product)."""
    if given is not None:
        return FileFormat(given)
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        known = ", ".join(f"{s} ({f.value})" for s, f in SUFFIXES.items())
        raise FormatError(
            f"{path}: cannot tell the format from the extension {suffix!r}; "
            f"use one of {known} or --from/--to"
        )
    return SUFFIXES[suffix]


def read_file(path: str | os.PathLike, file_format: FileFormat) -> PtychoDataset | Product:
    """The dataset or reconstruction in ``path``."""
    if file_format is FileFormat.cxi:
        return read_cxi(path)
    if file_format is FileFormat.product:
        return read_product(path)
    arrays = read_npz(path)
    if "diffraction" not in arrays:
        return product_from_arrays(arrays, str(path))
    try:
        return dataset_from_arrays(arrays)
    except DatasetError as error:
        raise DatasetError(f"{path}: {error}") from None


def write_file(
    path: str | os.PathLike, content: PtychoDataset | Product, file_format: FileFormat
) -> Path:
    """Write ``content`` to ``path`` in ``file_format`` (atomically)."""
    if isinstance(content, Product):
        if file_format is FileFormat.cxi:
            raise FormatError(
                f"{path}: a reconstruction has no diffraction patterns, and a CXI file needs them"
            )
        return (
            write_product(path, content)
            if file_format is FileFormat.product
            else write_product_npz(path, content)
        )
    if file_format is FileFormat.product:
        return write_product(
            path,
            product_from_arrays(
                content.to_arrays(), f"{path}: cannot write the dataset as a product"
            ),
        )
    return (
        write_cxi(path, content) if file_format is FileFormat.cxi else save_dataset(path, content)
    )


def convert_file(
    source: str | os.PathLike,
    target: str | os.PathLike,
    source_format: FileFormat | None = None,
    target_format: FileFormat | None = None,
) -> PtychoDataset | Product:
    """Read ``source`` and write it to ``target``; formats default to the extensions. Returns what
    was converted."""
    content = read_file(source, format_of(source, source_format))
    write_file(target, content, format_of(target, target_format))
    return content
