"""The reconstruction contract: what a method reconstructs from, what it returns, its NPZ file.

:class:`ReconstructionInput` is what a method is given: diffraction amplitudes, probe positions,
the probe, the experiment geometry, the object grid to reconstruct on and, optionally, a
starting object. It never holds the ground truth. :class:`Reconstruction` is what every method
(CDTools, pty-chi, PtychoPINN) returns, in ptypinn conventions: the object on the dataset's
object grid (:attr:`ptypinn.io.dataset.PtychoDataset.object_shape`), the probe, the positions,
the loss history, the wall time and free-form metadata.

Reconstruction NPZ (one writer, :func:`write_reconstruction`, one reader,
:func:`read_reconstruction`; ptychodus products convert through it, :mod:`ptypinn.io.product`):

==========================  ==========  =====================================================
key                         dtype       meaning
==========================  ==========  =====================================================
``objectGuess``             (H, W) c64  reconstructed object
``probeGuess``              (N, N) c64  probe (refined or as given)
``xcoords``, ``ycoords``    (n,) f64    probe positions, object pixels
``loss_epochs``             (k,) i64    iteration of each recorded loss (optional)
``loss_values``             (k,) f64    the method's loss (optional)
``probe_position_indexes``  (n,) i64    optional: position indexes (ptychodus)
``metadata``                () str      JSON: ``method``, ``iterations``, ``wall_time_s``,
                                        ``geometry`` and the method's own entries
==========================  ==========  =====================================================

A canonical dataset NPZ with an ``objectGuess`` reads as a reconstruction too (its diffraction
is ignored).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptypinn.io.artifacts import write_npz
from ptypinn.io.dataset import DatasetError, PtychoDataset, metadata_entry, read_metadata, read_npz
from ptypinn.io.hdf5 import FormatError
from ptypinn.physics.geometry import Geometry, dataset_geometry

REQUIRED_KEYS = ("objectGuess", "probeGuess", "xcoords", "ycoords")
RECORD_KEYS = ("method", "iterations", "wall_time_s")  # typed fields kept in the metadata entry


@dataclass(frozen=True)
class ReconstructionInput:
    """What a method reconstructs from, in ptypinn conventions (never the ground truth).

    ``diffraction`` (n, N, N) far-field amplitudes (zero frequency at ``[N/2, N/2]``),
    ``positions_px`` (n, 2) probe centres as (x, y) object pixels, ``probe`` (N, N) complex on
    the object pixel grid, ``object_shape`` (H, W) the grid to reconstruct on, ``geometry`` the
    experiment's, ``initial_object`` an optional (H, W) starting object (flat ones otherwise).
    """

    diffraction: np.ndarray
    positions_px: np.ndarray
    probe: np.ndarray
    object_shape: tuple[int, int]
    geometry: Geometry
    initial_object: np.ndarray | None = None

    def __post_init__(self) -> None:
        shape = self.diffraction.shape
        if len(shape) != 3 or shape[1] != shape[2] or shape[0] == 0:
            raise DatasetError(f"diffraction must be a non-empty (n, N, N) stack, got {shape}")
        count, size = shape[0], shape[2]
        if size % 2:
            raise DatasetError(f"patterns must have an even size N, got {size}")
        if self.positions_px.shape != (count, 2):
            raise DatasetError(
                f"positions must be ({count}, 2) as (x, y), got {self.positions_px.shape}"
            )
        if self.probe.shape != (size, size):
            raise DatasetError(
                f"probe must be {size}x{size} like the patterns, got {self.probe.shape}"
            )
        if len(self.object_shape) != 2 or min(self.object_shape) < size:
            raise DatasetError(
                f"object shape {self.object_shape} must be 2-D and at least {size} px on each side"
            )
        if self.initial_object is not None and self.initial_object.shape != tuple(
            self.object_shape
        ):
            raise DatasetError(
                f"the starting object is {self.initial_object.shape}, the grid {self.object_shape}"
            )

    @property
    def patch_size(self) -> int:
        return int(self.diffraction.shape[-1])

    @property
    def count(self) -> int:
        return int(self.diffraction.shape[0])

    @classmethod
    def from_dataset(
        cls, dataset: PtychoDataset, initial_object: np.ndarray | None = None
    ) -> ReconstructionInput:
        """The input for ``dataset`` on its object grid; ``objectGuess`` is never passed on."""
        return cls(
            diffraction=dataset.diffraction,
            positions_px=dataset.positions,
            probe=dataset.probe,
            object_shape=dataset.object_shape,
            geometry=dataset.geometry,
            initial_object=initial_object,
        )


@dataclass(frozen=True)
class Snapshot:
    """A method's object after ``iteration`` iterations, ``wall_time_s`` seconds into its run
    (the seconds the snapshots themselves took are not counted): a point of a time-to-quality
    curve."""

    iteration: int
    wall_time_s: float
    obj: np.ndarray


@dataclass(frozen=True)
class Reconstruction:
    """One method's reconstruction, on the input's object grid and position convention.

    ``losses`` are the method's loss values at iterations ``loss_epochs`` (default: one per
    iteration from 0); ``iterations`` counts the iterations run (0 for a single pass such as
    network inference); ``wall_time_s`` covers the reconstruction itself, not imports or
    set-up; ``metadata`` holds the method's settings and provenance (JSON values);
    ``snapshots`` the object at the iterations an engine was asked to keep (``checkpoints``), in
    memory only (they are scored, not written).
    """

    method: str
    obj: np.ndarray
    probe: np.ndarray
    positions_px: np.ndarray
    geometry: Geometry
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    iterations: int = 0
    wall_time_s: float = 0.0
    metadata: dict = field(default_factory=dict)
    loss_epochs: np.ndarray | None = None
    position_indexes: np.ndarray | None = None
    snapshots: tuple[Snapshot, ...] = ()

    @property
    def epochs(self) -> np.ndarray:
        """The iteration of every loss value."""
        if self.loss_epochs is None:
            return np.arange(len(self.losses), dtype=np.int64)
        return np.asarray(self.loss_epochs, dtype=np.int64)

    @property
    def seconds_per_iteration(self) -> float | None:
        return self.wall_time_s / self.iterations if self.iterations else None


def starting_object(reconstruction: Reconstruction) -> np.ndarray:
    """``reconstruction``'s object as another method's start (a warm start): flat (ones) where
    it reconstructed nothing (zero), so that no pixel starts opaque."""
    obj = np.asarray(reconstruction.obj, dtype=np.complex64)
    return np.where(obj == 0, np.complex64(1), obj)


def reconstruction_arrays(reconstruction: Reconstruction) -> dict[str, np.ndarray]:
    """The NPZ arrays of ``reconstruction`` (layout: module docstring)."""
    rec = reconstruction
    metadata = {
        **rec.metadata,
        "method": rec.method,
        "iterations": int(rec.iterations),
        "wall_time_s": float(rec.wall_time_s),
        "geometry": rec.geometry.to_metadata(rec.probe.shape[-1]),
    }
    positions = np.asarray(rec.positions_px, dtype=np.float64)
    arrays: dict[str, np.ndarray] = {
        "objectGuess": np.asarray(rec.obj, dtype=np.complex64),
        "probeGuess": np.asarray(rec.probe, dtype=np.complex64),
        "xcoords": positions[:, 0].copy(),
        "ycoords": positions[:, 1].copy(),
        "loss_epochs": rec.epochs,
        "loss_values": np.asarray(rec.losses, dtype=np.float64),
        "metadata": metadata_entry(metadata),
    }
    if rec.position_indexes is not None:
        arrays["probe_position_indexes"] = np.asarray(rec.position_indexes, dtype=np.int64)
    return arrays


def _complex_image(arrays: Mapping[str, np.ndarray], key: str, source: str) -> np.ndarray:
    image = np.asarray(arrays[key])
    if (
        image.ndim != 2
        or not np.issubdtype(image.dtype, np.number)
        or not np.all(np.isfinite(image))
    ):
        raise FormatError(
            f"{source}: {key} must be a finite 2-D array, got {image.dtype} {image.shape}"
        )
    return image.astype(np.complex64)


def reconstruction_from_arrays(
    arrays: Mapping[str, np.ndarray], source: str = "arrays"
) -> Reconstruction:
    """A :class:`Reconstruction` from reconstruction-NPZ (or dataset-NPZ) arrays.

    ``source`` names them in errors. Missing ``method``/``iterations``/``wall_time_s`` read as
    ``""``/0/0.0, a missing geometry as the stated default.
    """
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        raise FormatError(
            f"{source}: missing {missing}; a reconstruction needs {list(REQUIRED_KEYS)}"
        )
    obj = _complex_image(arrays, "objectGuess", source)
    probe = _complex_image(arrays, "probeGuess", source)
    x, y = (np.asarray(arrays[key], dtype=np.float64) for key in ("xcoords", "ycoords"))
    if x.ndim != 1 or x.shape != y.shape:
        raise FormatError(
            f"{source}: xcoords {x.shape} and ycoords {y.shape} must be 1-D and of equal length"
        )
    bad = int(x.size + y.size - np.count_nonzero(np.isfinite(x)) - np.count_nonzero(np.isfinite(y)))
    if bad:
        raise FormatError(f"{source}: xcoords and ycoords hold {bad} NaN or infinite positions")
    try:
        metadata = read_metadata(arrays)
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict):
        raise FormatError(f"{source}: metadata must be a JSON object stored as a string")
    epochs = np.asarray(arrays.get("loss_epochs", np.zeros(0)), dtype=np.int64).reshape(-1)
    values = np.asarray(arrays.get("loss_values", np.zeros(0)), dtype=np.float64).reshape(-1)
    if epochs.shape != values.shape:
        raise FormatError(
            f"{source}: {epochs.shape[0]} loss_epochs for {values.shape[0]} loss_values"
        )
    indexes = arrays.get("probe_position_indexes")
    if indexes is not None and np.shape(indexes) != x.shape:
        raise FormatError(
            f"{source}: probe_position_indexes has {np.size(indexes)} entries "
            f"for {x.shape[0]} positions"
        )
    geometry = dataset_geometry(metadata, probe.shape[-1])
    rest = {key: value for key, value in metadata.items() if key not in (*RECORD_KEYS, "geometry")}
    return Reconstruction(
        method=str(metadata.get("method", "")),
        obj=obj,
        probe=probe,
        positions_px=np.stack((x, y), axis=1),
        geometry=geometry,
        losses=values,
        iterations=int(metadata.get("iterations", 0)),
        wall_time_s=float(metadata.get("wall_time_s", 0.0)),
        metadata=rest,
        loss_epochs=epochs,
        position_indexes=None if indexes is None else np.asarray(indexes, dtype=np.int64),
    )


def write_reconstruction(path: str | os.PathLike, reconstruction: Reconstruction) -> Path:
    """Write ``reconstruction`` as a reconstruction NPZ (atomic, byte-reproducible)."""
    return write_npz(path, reconstruction_arrays(reconstruction))


def read_reconstruction(path: str | os.PathLike) -> Reconstruction:
    """Read a reconstruction NPZ; problems raise :class:`FormatError` (or :class:`DatasetError`
    for a file that is not an NPZ) naming the file."""
    return reconstruction_from_arrays(read_npz(path), str(path))
