"""CXI files (Coherent X-ray Imaging, spec v1.6, cxidb.org) to and from :class:`PtychoDataset`.

Read (SI units throughout)
--------------------------
* frames (n, N, N): ``/entry_1/data_1/data`` (usually a soft link), else
  ``/entry_1/instrument_1/detector_1/data``; measured *intensities*, zero frequency near the
  frame centre (as our contract's ``fftshift`` layout). Frames must be square.
* translations (n, 3) or (n, 2) in metres: ``/entry_1/sample_1/geometry_1/translation``, else the
  legacy ``/entry_1/data_1/translation``. CXI records **sample motion**: the probe position on
  the object is the *negative* of the translation (``x`` = column 0, ``y`` = column 1).
* photon energy in **joules** at ``source_1/energy`` (a value above 1e-12 J is refused: that is
  an energy in eV), else the wavelength in metres at ``source_1/wavelength``.
* ``detector_1/distance``, ``detector_1/x_pixel_size``, ``detector_1/y_pixel_size`` (m). The
  object pixel is ``dx = lambda z / (N p)`` per axis (:mod:`ptypinn.physics.geometry`).
* ``detector_1/mask`` (optional, (N, N) or (n, N, N), integer bit field, 0 = good): a pixel is
  bad when any bit other than ``0x1000`` ("signal above background", informational) is set.
  Bad pixels carry no measurement: their amplitude is stored as **0** and their ``[row, col]``
  list is kept in ``metadata["masked_pixels"]`` (the union over frames for a per-frame mask),
  so a loss can exclude them. Negative intensities (over-subtracted background) become 0 and
  are counted in ``metadata["negative_intensities_clipped"]``.
* probe (optional): ``source_1/probe``, ``source_1/illumination`` or ``source_1/data_illumination``;
  leading mode axes of length one are dropped, extra modes are dropped after the first
  (``metadata["probe_modes_dropped"]``). Without a probe, the initial guess is the inverse
  Fourier transform of the mean measured amplitude (``metadata["probe_source"]`` says so).

Amplitude normalisation
-----------------------
``diffraction = sqrt(I) / s`` with the dose scale ``s`` chosen so the data are consistent with
the probe and a unit-transmission object: ``mean_patterns sum(diffraction**2) = sum(|probe|**2)``
(Parseval for ``A = |F(P O)|`` with ``|O| = 1``). ``s`` is stored as ``metadata["dose_scale"]``
(``I = (s * diffraction)**2``, as for simulated data) and ``metadata["nphotons"]`` is the mean
measured intensity per pattern. Files written here carry ``s`` (see below) and are read back
with it, so our own round trips are exact up to float32 rounding.

Positions
---------
Probe positions (metres) become object pixels relative to ``position_origin_m``: for a foreign
file the origin is chosen so the left/top-most patch starts at pixel 0 and the object grid
(``metadata["object_shape"]``) is the scan extent plus ``N`` (:func:`fit_object_grid`).

Write
-----
:func:`write_cxi` stores ``I = (s * diffraction)**2`` (float32) at ``detector_1/data`` with a
``data_1/data`` soft link, ``translation = -position`` (metres, z = 0), the energy in joules,
distance and detector pixel size from ``metadata["geometry"]`` (or the stated default of
:func:`ptypinn.physics.geometry.default_geometry`), the probe at ``/entry_1/image_1/data`` with soft
links ``source_1/probe`` and ``source_1/illumination``, the object (if any) at
``/entry_1/image_2/data``, a mask rebuilt from ``masked_pixels`` and, under ``/entry_1/ptypinn``,
the dataset's metadata as JSON (it carries ``dose_scale`` and the position origin) and
``scan_index``. An object is only read back from files that carry that ``ptypinn`` group: for
other files its registration with the positions is unknown.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from ptypinn import __version__
from ptypinn.io.dataset import DatasetError, PtychoDataset, dataset_from_arrays, metadata_entry
from ptypinn.io.hdf5 import FormatError, HDF5Reader, open_hdf5, write_hdf5
from ptypinn.physics.geometry import (
    ELECTRON_VOLT_J,
    PLANCK_TIMES_C_J_M,
    Geometry,
    dataset_geometry,
    fit_object_grid,
    xy_pair,
)

CXI_VERSION = 160
MASK_SIGNAL_ABOVE_BACKGROUND = 0x1000
MASK_INVALID = 0x1
MAX_ENERGY_J = 1e-12  # 6 MeV: anything larger is an energy given in eV

ENTRY = "/entry_1"
SOURCE = f"{ENTRY}/instrument_1/source_1"
DETECTOR = f"{ENTRY}/instrument_1/detector_1"
DATA_PATHS = (f"{ENTRY}/data_1/data", f"{DETECTOR}/data")
TRANSLATION_PATHS = (f"{ENTRY}/sample_1/geometry_1/translation", f"{ENTRY}/data_1/translation")
PROBE_PATHS = (f"{SOURCE}/probe", f"{SOURCE}/illumination", f"{SOURCE}/data_illumination")
PROBE_IMAGE = f"{ENTRY}/image_1/data"
OBJECT_IMAGE = f"{ENTRY}/image_2/data"
PTYPINN = f"{ENTRY}/ptypinn"


def _frames(h5: HDF5Reader) -> tuple[np.ndarray, str]:
    name = h5.find(*DATA_PATHS)
    if name is None:
        raise h5.error(f"no diffraction frames: looked for {' and '.join(DATA_PATHS)}")
    shape, dtype = h5.shape(name), h5.file[name].dtype
    if len(shape) != 3 or shape[0] == 0 or shape[1] != shape[2]:
        raise h5.error(
            f"frames must be a non-empty (n, N, N) stack of square patterns, got shape {shape}",
            name,
        )
    if np.issubdtype(dtype, np.complexfloating) or not np.issubdtype(dtype, np.number):
        raise h5.error(f"frames must be real intensities, got dtype {dtype}", name)
    frames = h5.read(name, itemsize=8).astype(np.float64)
    bad = int(frames.size - np.count_nonzero(np.isfinite(frames)))
    if bad:
        raise h5.error(f"frames contain {bad} NaN or infinite values", name)
    return frames, name


def _probe_positions(h5: HDF5Reader, count: int) -> np.ndarray:
    """(n, 2) probe positions in metres: the negated sample translations."""
    name = h5.find(*TRANSLATION_PATHS)
    if name is None:
        raise h5.error(f"no sample translations: looked for {' and '.join(TRANSLATION_PATHS)}")
    shape = h5.shape(name)
    if len(shape) != 2 or shape[1] not in (2, 3):
        raise h5.error(f"translations must have shape (n, 3) or (n, 2), got {shape}", name)
    if shape[0] != count:
        raise h5.error(f"{shape[0]} translations for {count} diffraction frames", name)
    translation = np.asarray(h5.read(name, itemsize=8), dtype=np.float64)
    if not np.all(np.isfinite(translation)):
        raise h5.error("translations contain NaN or infinite values", name)
    return -translation[:, :2]


def _photon_energy_eV(h5: HDF5Reader) -> float:
    if h5.find(f"{SOURCE}/energy"):
        energy = h5.scalar(f"{SOURCE}/energy", what="photon energy (J)")
        if energy > MAX_ENERGY_J:
            raise h5.error(
                f"photon energy {energy:g} is not in joules (CXI stores J; 1 keV = 1.602e-16 J)",
                f"{SOURCE}/energy",
            )
        return energy / ELECTRON_VOLT_J
    if h5.find(f"{SOURCE}/wavelength"):
        return (
            PLANCK_TIMES_C_J_M
            / h5.scalar(f"{SOURCE}/wavelength", what="wavelength (m)")
            / ELECTRON_VOLT_J
        )
    raise h5.error(f"no photon energy: looked for {SOURCE}/energy (J) and {SOURCE}/wavelength (m)")


def _bad_pixels(h5: HDF5Reader, shape: tuple[int, int, int]) -> np.ndarray | None:
    """Boolean (n, N, N) or (N, N) array of pixels without a valid measurement, or ``None``."""
    mask = h5.optional_array(f"{DETECTOR}/mask")
    if mask is None:
        return None
    if not np.issubdtype(mask.dtype, np.integer) or mask.shape not in (shape, shape[1:]):
        raise h5.error(
            f"mask must be an integer bit field of shape {shape[1:]} or {shape}, "
            f"got {mask.dtype} {mask.shape}",
            f"{DETECTOR}/mask",
        )
    return (mask.astype(np.int64) & ~MASK_SIGNAL_ABOVE_BACKGROUND) != 0


def _probe(h5: HDF5Reader, size: int) -> tuple[np.ndarray | None, dict]:
    name = h5.find(*PROBE_PATHS)
    if name is None:
        return None, {}
    shape, dtype = h5.shape(name), h5.file[name].dtype
    if len(shape) < 2 or shape[-2:] != (size, size) or not np.issubdtype(dtype, np.number):
        raise h5.error(
            f"probe must be {size}x{size} (the frame size) with optional leading mode axes, "
            f"got {dtype} {shape}",
            name,
        )
    probe = h5.read(name)
    modes = probe.reshape(-1, size, size)
    notes: dict[str, object] = {"probe_source": name}
    if modes.shape[0] > 1:
        notes["probe_modes_dropped"] = modes.shape[0] - 1
    return modes[0].astype(np.complex64), notes


def probe_from_amplitude(mean_amplitude: np.ndarray) -> np.ndarray:
    """Initial probe whose far field (``physics.far_field``) is ``mean_amplitude``, centred at
    [N/2, N/2]."""
    field = np.fft.ifft2(np.fft.ifftshift(mean_amplitude), norm="ortho")
    return np.fft.fftshift(field).astype(np.complex64)


def _stored_metadata(h5: HDF5Reader) -> dict | None:
    text = h5.text(f"{PTYPINN}/metadata")
    if text is None:
        return None
    try:
        metadata = json.loads(text)
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict):
        raise h5.error("ptypinn metadata is not a JSON object", f"{PTYPINN}/metadata")
    return metadata


def read_cxi(path: str | os.PathLike) -> PtychoDataset:
    """Read a CXI 1.6 ptychography file as a validated dataset (conventions: module docstring)."""
    path = Path(path)
    with open_hdf5(path, "CXI") as h5:
        intensity, data_name = _frames(h5)
        count, size = intensity.shape[0], intensity.shape[-1]
        positions_m = _probe_positions(h5, count)
        energy_eV = _photon_energy_eV(h5)
        distance = h5.scalar(f"{DETECTOR}/distance", what="sample-detector distance (m)")
        pitch = xy_pair(
            h5.scalar(f"{DETECTOR}/{axis}_pixel_size", what=f"detector {axis} pixel size (m)")
            for axis in "xy"
        )
        bad = _bad_pixels(h5, intensity.shape)
        probe, notes = _probe(h5, size)
        stored = _stored_metadata(h5)
        scan_index = h5.optional_array(f"{PTYPINN}/scan_index") if stored is not None else None
        obj = h5.optional_array(OBJECT_IMAGE) if stored is not None else None

    # What the file itself says about masking and clipping is recomputed, never inherited.
    metadata = {
        k: v
        for k, v in (stored or {}).items()
        if k not in ("masked_pixels", "negative_intensities_clipped")
    }
    if bad is not None and bad.any():
        intensity[np.broadcast_to(bad, intensity.shape)] = 0.0
        union = bad if bad.ndim == 2 else bad.any(axis=0)
        metadata["masked_pixels"] = np.argwhere(union).tolist()
    negative = int(np.count_nonzero(intensity < 0))
    if negative:
        metadata["negative_intensities_clipped"] = negative
        np.clip(intensity, 0.0, None, out=intensity)
    amplitude = np.sqrt(intensity)
    if probe is None:
        probe = probe_from_amplitude(amplitude.mean(axis=0))
        notes = {
            "probe_source": "estimated: inverse Fourier transform of the mean measured amplitude"
        }
    metadata.update(notes)

    mean_counts = float(intensity.sum(axis=(1, 2)).mean())
    if "dose_scale" in metadata:
        metadata["amplitude_normalisation"] = "dose_scale stored in the file"
    else:
        probe_energy = float(np.sum(np.abs(probe.astype(np.complex128)) ** 2))
        if not mean_counts > 0:
            raise FormatError(
                f"{path} at {data_name}: the frames hold no signal (all zero after masking)"
            )
        if not probe_energy > 0:
            raise FormatError(f"{path} at {notes['probe_source']}: the probe is zero everywhere")
        metadata["dose_scale"] = float(np.sqrt(mean_counts / probe_energy))
        metadata["nphotons"] = mean_counts
        metadata["amplitude_normalisation"] = (
            "mean over patterns of sum(diffraction^2) equals sum(|probe|^2)"
        )
    diffraction = (amplitude / metadata["dose_scale"]).astype(np.float32)

    stored_geometry = (stored or {}).get("geometry") or {}
    source = stored_geometry.get("source") or f"CXI file {path.name}"
    geometry = Geometry.from_detector(energy_eV, distance, pitch, size, source=source)
    if "position_origin_m" in stored_geometry:
        origin = xy_pair(float(v) for v in stored_geometry["position_origin_m"])
    else:
        origin, metadata["object_shape"] = fit_object_grid(
            positions_m, geometry.object_pixel_size_m, size
        )
    geometry = Geometry(
        geometry.photon_energy_eV, distance, geometry.object_pixel_size_m, origin, geometry.source
    )
    metadata["geometry"] = geometry.to_metadata(size)
    metadata["converted_from"] = {"format": "CXI", "path": str(path)}

    pixels = geometry.to_pixels(positions_m)
    arrays = {
        "diffraction": diffraction,
        "xcoords": pixels[:, 0].copy(),
        "ycoords": pixels[:, 1].copy(),
        "probeGuess": probe,
        "metadata": metadata_entry(metadata),
    }
    if obj is not None:
        arrays["objectGuess"] = obj.astype(np.complex64)
    if scan_index is not None:
        arrays["scan_index"] = scan_index
    try:
        return dataset_from_arrays(arrays)
    except DatasetError as error:
        raise DatasetError(f"{path}: {error}") from None


def write_cxi(path: str | os.PathLike, dataset: PtychoDataset) -> Path:
    """Write ``dataset`` as a CXI 1.6 file, atomically (layout: module docstring)."""
    path = Path(path)
    size = dataset.patch_size
    geometry = dataset_geometry(dataset.metadata, size)
    scale = float(dataset.metadata.get("dose_scale", 1.0))
    intensity = (scale * dataset.diffraction.astype(np.float64)) ** 2
    if not np.all(intensity <= np.finfo(np.float32).max):
        raise DatasetError(
            f"{path}: the intensities (dose_scale * diffraction)^2 reach {intensity.max():.3g}, "
            "beyond float32 (3.4e38): they cannot be stored in a CXI file"
        )
    intensity = intensity.astype(np.float32)
    translation = np.zeros((dataset.count, 3))
    translation[:, :2] = -geometry.to_metres(dataset.positions)
    metadata = {**dataset.metadata, "geometry": geometry.to_metadata(size), "dose_scale": scale}
    pitch_x, pitch_y = geometry.detector_pixel_size_m(size)

    with write_hdf5(path) as file:
        file["cxi_version"] = CXI_VERSION
        file["number_of_entries"] = 1
        entry = file.create_group(ENTRY)
        entry["program_name"] = f"ptypinn {__version__}"
        source = file.create_group(SOURCE)
        source["energy"] = geometry.photon_energy_J
        detector = file.create_group(DETECTOR)
        detector["distance"] = geometry.detector_distance_m
        detector["x_pixel_size"] = pitch_x
        detector["y_pixel_size"] = pitch_y
        detector.create_dataset("data", data=intensity).attrs["axes"] = "translation:y:x"
        if metadata.get("masked_pixels"):
            mask = np.zeros((size, size), dtype=np.uint32)
            rows, cols = np.asarray(metadata["masked_pixels"], dtype=np.int64).T
            mask[rows, cols] = MASK_INVALID
            detector["mask"] = mask
        file[f"{ENTRY}/sample_1/geometry_1/translation"] = translation
        data_group = file.create_group(f"{ENTRY}/data_1")
        data_group["data"] = h5py.SoftLink(f"{DETECTOR}/data")
        data_group["translation"] = h5py.SoftLink(TRANSLATION_PATHS[0])
        probe = file.create_dataset(PROBE_IMAGE, data=dataset.probe)
        probe.attrs.update({"data_type": "probe", "data_space": "real", "axes": "y:x"})
        source["probe"] = h5py.SoftLink(PROBE_IMAGE)
        source["illumination"] = h5py.SoftLink(PROBE_IMAGE)
        if dataset.obj is not None:
            obj = file.create_dataset(OBJECT_IMAGE, data=dataset.obj)
            obj.attrs.update({"data_type": "object", "data_space": "real", "axes": "y:x"})
        extras = file.create_group(PTYPINN)
        extras["metadata"] = json.dumps(metadata, sort_keys=True)
        if dataset.scan_index is not None:
            extras["scan_index"] = dataset.scan_index
    return path
