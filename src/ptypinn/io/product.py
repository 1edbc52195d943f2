"""ptychodus product files (HDF5, ``*.h5``) and reconstruction NPZ files, both as :class:`Product`.

ptychodus product HDF5 (as written by ptychodus ``save_product``)
-----------------------------------------------------------------
Root attributes: ``detector_object_distance_m`` and the photon energy ``photon_energy_eV``
(legacy spelling ``probe_energy_eV``) are required; ``name``, ``comments``,
``probe_photon_count``, ``exposure_time_s``, ``mass_attenuation_m2_kg`` (also spelt
``mass_attenuation_m2_per_kg``), ``tomography_angle_deg`` and any others are kept in
``Product.metadata``. Datasets: ``probe_position_indexes`` (optional here),
``probe_position_x_m``, ``probe_position_y_m``; ``probe`` (rank 2-4, modes first) with
``pixel_width_m``/``pixel_height_m`` attributes (default: the object's); ``object`` ((H, W) or
(1, H, W)) with ``center_x_m``, ``center_y_m``, ``pixel_width_m``, ``pixel_height_m``;
``loss_epochs`` and ``loss_values`` (legacy ``costs``), both optional.

Object pixel ``(c, r)`` sits at ``center + pixel * (c - (W-1)/2, r - (H-1)/2)`` (ptychodus's
centred-pixel convention); positions are probe positions in the same world frame, metres.
Only the first probe mode is kept (``metadata["probe_modes_dropped"]`` counts the rest; OPR
weights, as a root dataset or a probe attribute, are dropped with them) and only single-layer
objects are read. The probe must share the object's pixel (our contract's probe lives on the
object grid).

Written files follow the same layout with both energy and both mass-attenuation spellings (so
old and new ptychodus read them), the probe as (1, 1, N, N), the object as (1, H, W), an empty
``object_layer_spacing_m``, ``format_id``/``format_version`` tags, and the rest of
``Product.metadata`` as JSON in the root attribute ``ptypinn_metadata``.

Reconstruction NPZ
------------------
A product converts to and from :class:`ptypinn.io.reconstruction.Reconstruction` (positions in
object pixels through its geometry) and so reads and writes the one reconstruction NPZ layout of
:mod:`ptypinn.io.reconstruction`; the ``geometry`` entry of its metadata places the pixels in
metres, else the stated default geometry applies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptypinn.io.hdf5 import HDF5Reader, open_hdf5, plain_value, write_hdf5
from ptypinn.io.reconstruction import (
    Reconstruction,
    reconstruction_arrays,
    reconstruction_from_arrays,
    write_reconstruction,
)
from ptypinn.physics.geometry import Geometry, xy_pair

FORMAT_ID = "ptychodus.product.hdf5"
FORMAT_VERSION = "1.0"
DISTANCE_KEY = "detector_object_distance_m"
ENERGY_KEYS = ("photon_energy_eV", "probe_energy_eV")
MASS_ATTENUATION_KEYS = ("mass_attenuation_m2_kg", "mass_attenuation_m2_per_kg")
METADATA_KEY = "ptypinn_metadata"
# Root attributes ptychodus expects, written with these defaults when the metadata has none.
ROOT_DEFAULTS = {
    "name": "ptypinn",
    "comments": "",
    "probe_photon_count": 0.0,
    "exposure_time_s": 0.0,
    "tomography_angle_deg": 0.0,
}
PRODUCT_GEOMETRY = "ptychodus product"  # geometry source of a product read from its own file


@dataclass(frozen=True)
class Product:
    """A reconstruction in ptychodus's terms: probe, object and probe positions in metres."""

    probe: np.ndarray
    obj: np.ndarray
    pixel_size_m: tuple[float, float]
    object_center_m: tuple[float, float]
    positions_m: np.ndarray
    photon_energy_eV: float
    detector_distance_m: float
    position_indexes: np.ndarray | None = None
    loss_epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    loss_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    metadata: dict = field(default_factory=dict)

    @property
    def indexes(self) -> np.ndarray:
        """Position indexes (``0..n-1`` unless the product names them)."""
        return (
            np.arange(len(self.positions_m))
            if self.position_indexes is None
            else self.position_indexes
        )

    def geometry(self) -> Geometry:
        """The world frame of the object grid (origin = centre of pixel (0, 0))."""
        height, width = self.obj.shape
        origin = xy_pair(
            c - p * (size - 1) / 2
            for c, p, size in zip(
                self.object_center_m, self.pixel_size_m, (width, height), strict=True
            )
        )
        source = str(self.metadata.get("geometry_source", PRODUCT_GEOMETRY))
        return Geometry(
            self.photon_energy_eV,
            self.detector_distance_m,
            xy_pair(self.pixel_size_m),
            origin,
            source,
        )


# --------------------------------------------------------------------------------------------
# HDF5


def _first_mode(h5: HDF5Reader, name: str, array: np.ndarray) -> tuple[np.ndarray, int]:
    if array.ndim not in (2, 3, 4) or not np.issubdtype(array.dtype, np.number):
        raise h5.error(
            f"probe must be a numeric array of rank 2 to 4, got {array.dtype} {array.shape}", name
        )
    modes = array.reshape(-1, *array.shape[-2:])
    return modes[0], modes.shape[0] - 1


def _single_layer(h5: HDF5Reader, array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise h5.error(
            "object must be (H, W) or (1, H, W) (multi-slice objects are not supported), "
            f"got {array.dtype} {array.shape}",
            "/object",
        )
    return array


def _positions(h5: HDF5Reader) -> tuple[np.ndarray, np.ndarray | None]:
    x = h5.array("probe_position_x_m", what="probe x positions (m)")
    y = h5.array("probe_position_y_m", what="probe y positions (m)")
    if x.ndim != 1 or x.shape != y.shape:
        raise h5.error(
            f"probe_position_x_m {x.shape} and probe_position_y_m {y.shape} "
            "must be 1-D and of equal length",
            "/probe_position_y_m",
        )
    h5.finite(x, "/probe_position_x_m", "probe x positions")
    h5.finite(y, "/probe_position_y_m", "probe y positions")
    indexes = h5.optional_array("probe_position_indexes")
    if indexes is not None and indexes.shape != x.shape:
        raise h5.error(
            f"{indexes.shape[0] if indexes.ndim else 0} indexes for {x.shape[0]} positions",
            "/probe_position_indexes",
        )
    return np.stack((x, y), axis=1).astype(np.float64), indexes


def _losses(h5: HDF5Reader) -> tuple[np.ndarray, np.ndarray]:
    values = h5.optional_array("loss_values", "costs")
    values = np.zeros(0) if values is None else values.reshape(-1).astype(np.float64)
    epochs = h5.optional_array("loss_epochs")
    epochs = np.arange(values.shape[0]) if epochs is None else epochs.reshape(-1).astype(np.int64)
    if epochs.shape != values.shape:
        raise h5.error(
            f"{epochs.shape[0]} loss epochs for {values.shape[0]} loss values", "/loss_epochs"
        )
    return epochs, values


def _root_metadata(h5: HDF5Reader) -> dict:
    metadata: dict = {}
    for key, value in h5.file.attrs.items():
        if key == METADATA_KEY:
            try:
                stored = json.loads(str(plain_value(value)))
            except ValueError:
                stored = None
            if not isinstance(stored, dict):
                raise h5.error("not a JSON object", f"/@{METADATA_KEY}")
            metadata.update(stored)
        elif key in MASS_ATTENUATION_KEYS:
            metadata[MASS_ATTENUATION_KEYS[0]] = plain_value(value)
        elif key not in (DISTANCE_KEY, *ENERGY_KEYS, "format_id", "format_version"):
            metadata[key] = plain_value(value)
    return metadata


def read_product(path: str | os.PathLike) -> Product:
    """Read a ptychodus product HDF5 file (layout and accepted spellings: module docstring)."""
    with open_hdf5(path, "ptychodus product") as h5:
        distance = h5.attribute("/", DISTANCE_KEY, what="detector-object distance (m)")
        energy = h5.attribute("/", *ENERGY_KEYS, what="photon energy (eV)")
        obj = h5.finite(_single_layer(h5, h5.array("object", what="object")), "/object", "object")
        pixel = xy_pair(
            h5.attribute("/object", f"pixel_{side}_m", what=f"object pixel {side} (m)")
            for side in ("width", "height")
        )
        center = xy_pair(
            h5.attribute(
                "/object", f"center_{axis}_m", what=f"object centre {axis} (m)", positive=False
            )
            for axis in "xy"
        )
        probe, dropped = _first_mode(h5, "/probe", h5.array("probe", what="probe"))
        h5.finite(probe, "/probe", "probe")
        probe_pixel = tuple(
            h5.attribute(
                "/probe", f"pixel_{side}_m", what=f"probe pixel {side} (m)", default=default
            )
            for side, default in zip(("width", "height"), pixel, strict=True)
        )
        if not np.allclose(probe_pixel, pixel, rtol=1e-6, atol=0):
            raise h5.error(
                f"probe pixel {probe_pixel} m differs from the object pixel {pixel} m; "
                "the probe must be on the object grid",
                "/probe",
            )
        positions, indexes = _positions(h5)
        epochs, values = _losses(h5)
        metadata = _root_metadata(h5)
    if dropped:
        metadata["probe_modes_dropped"] = dropped
    return Product(
        probe, obj, pixel, center, positions, energy, distance, indexes, epochs, values, metadata
    )


def write_product(path: str | os.PathLike, product: Product) -> Path:
    """Write ``product`` as a ptychodus product HDF5 file, atomically."""
    path = Path(path)
    metadata = dict(product.metadata)
    root = {key: metadata.pop(key, default) for key, default in ROOT_DEFAULTS.items()}
    mass_attenuation = float(metadata.pop(MASS_ATTENUATION_KEYS[0], 0.0))
    with write_hdf5(path) as file:
        file.attrs.update(root)
        file.attrs[DISTANCE_KEY] = product.detector_distance_m
        for key in ENERGY_KEYS:
            file.attrs[key] = product.photon_energy_eV
        for key in MASS_ATTENUATION_KEYS:
            file.attrs[key] = mass_attenuation
        file.attrs["format_id"] = FORMAT_ID
        file.attrs["format_version"] = FORMAT_VERSION
        file.attrs[METADATA_KEY] = json.dumps(metadata, sort_keys=True)
        file["probe_position_indexes"] = product.indexes.astype(np.int64)
        file["probe_position_x_m"] = product.positions_m[:, 0].astype(np.float64)
        file["probe_position_y_m"] = product.positions_m[:, 1].astype(np.float64)
        probe = file.create_dataset("probe", data=product.probe[None, None])
        obj = file.create_dataset("object", data=product.obj[None])
        for dataset in (probe, obj):
            dataset.attrs["pixel_width_m"], dataset.attrs["pixel_height_m"] = product.pixel_size_m
        obj.attrs["center_x_m"], obj.attrs["center_y_m"] = product.object_center_m
        file["object_layer_spacing_m"] = np.zeros(0)
        file["loss_epochs"] = np.asarray(product.loss_epochs, dtype=np.int64)
        file["loss_values"] = np.asarray(product.loss_values, dtype=np.float64)
    return path


# --------------------------------------------------------------------------------------------
# Reconstructions and their NPZ files

RECORD_DEFAULTS = {"method": "", "iterations": 0, "wall_time_s": 0.0}  # kept in Product.metadata


def product_to_reconstruction(product: Product) -> Reconstruction:
    """``product`` in object pixels; ``method``, ``iterations`` and ``wall_time_s`` come from its
    metadata (defaults where it has none)."""
    geometry = product.geometry()
    metadata = {key: value for key, value in product.metadata.items() if key != "geometry_source"}
    record = {key: metadata.pop(key, default) for key, default in RECORD_DEFAULTS.items()}
    return Reconstruction(
        method=str(record["method"]),
        obj=product.obj.astype(np.complex64),
        probe=product.probe.astype(np.complex64),
        positions_px=geometry.to_pixels(product.positions_m),
        geometry=geometry,
        losses=np.asarray(product.loss_values, dtype=np.float64),
        iterations=int(record["iterations"]),
        wall_time_s=float(record["wall_time_s"]),
        metadata=metadata,
        loss_epochs=np.asarray(product.loss_epochs, dtype=np.int64),
        position_indexes=product.position_indexes,
    )


def product_from_reconstruction(reconstruction: Reconstruction) -> Product:
    """``reconstruction`` in ptychodus's terms (metres); its record fields that differ from
    their defaults go into the product's metadata."""
    rec = reconstruction
    geometry = rec.geometry
    metadata = dict(rec.metadata)
    record = {"method": rec.method, "iterations": rec.iterations, "wall_time_s": rec.wall_time_s}
    metadata.update({key: value for key, value in record.items() if value != RECORD_DEFAULTS[key]})
    if geometry.source != PRODUCT_GEOMETRY:
        metadata["geometry_source"] = geometry.source
    return Product(
        probe=rec.probe,
        obj=rec.obj,
        pixel_size_m=geometry.object_pixel_size_m,
        object_center_m=geometry.object_center_m(rec.obj.shape),
        positions_m=geometry.to_metres(rec.positions_px),
        photon_energy_eV=geometry.photon_energy_eV,
        detector_distance_m=geometry.detector_distance_m,
        position_indexes=rec.position_indexes,
        loss_epochs=rec.epochs,
        loss_values=np.asarray(rec.losses, dtype=np.float64),
        metadata=metadata,
    )


def product_to_arrays(product: Product) -> dict[str, np.ndarray]:
    """The reconstruction-NPZ arrays of ``product`` (positions in object pixels)."""
    return reconstruction_arrays(product_to_reconstruction(product))


def product_from_arrays(arrays: Mapping[str, np.ndarray], source: str = "arrays") -> Product:
    """A :class:`Product` from reconstruction-NPZ (or dataset-NPZ) arrays; ``source`` names them
    in errors."""
    return product_from_reconstruction(reconstruction_from_arrays(arrays, source))


def write_product_npz(path: str | os.PathLike, product: Product) -> Path:
    """Write ``product`` as a reconstruction NPZ (atomic, byte-reproducible)."""
    return write_reconstruction(path, product_to_reconstruction(product))
