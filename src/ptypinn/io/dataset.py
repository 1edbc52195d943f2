"""Dataset contract (phase B): the canonical NPZ, its validator and load/save helpers.

Canonical NPZ keys:

========================  ==============  ====================================================
key                       shape, dtype    meaning
========================  ==============  ====================================================
``diffraction``           (n, N, N) f32   normalised far-field *amplitude* (sqrt of intensity)
``xcoords``, ``ycoords``  (n,) f64        probe centre positions, object pixels (x = column)
``probeGuess``            (N, N) c64      probe on the object pixel grid
``objectGuess``           (H, W) c64      optional: ground truth or reference object
``scan_index``            (n,) int        optional: which scan each pattern came from
``metadata``              () str          optional: JSON provenance (no pickle needed)
========================  ==============  ====================================================
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

import numpy as np

from ptypinn.io.artifacts import write_npz
from ptypinn.io.limits import TooLargeError, check_allocation, claimed_bytes
from ptypinn.physics.geometry import Geometry, dataset_geometry, object_grid_shape
from ptypinn.physics.grouping import neighbours_problem

REQUIRED_KEYS = ("diffraction", "xcoords", "ycoords", "probeGuess")
OPTIONAL_KEYS = ("objectGuess", "scan_index", "metadata")
LEGACY_HINTS = {
    "diff3d": (
        "'diff3d' is the upstream raw-data name; rename it to 'diffraction' (amplitude, float32)"
    ),
    "probe": "'probe' should be named 'probeGuess'",
    "object": "'object' should be named 'objectGuess'",
}


GRID_MARGIN = 4  # an object grid may span at most this many times the area of all patterns together

# A passive object (|O| <= 1) scatters at most the photons its probe carries: for normalised
# amplitudes the mean over patterns of sum(A^2) / sum(|P|^2) is at most 1 (0.6 on the default
# simulation). Above this bound the diffraction is not a normalised amplitude of this probe.
MAX_ENERGY_RATIO = 2.0


class DatasetError(ValueError):
    """A dataset that breaks the contract; the message lists every problem found."""


@dataclass(frozen=True)
class PtychoDataset:
    """One ptychographic dataset in the canonical layout (see module docstring)."""

    diffraction: np.ndarray
    xcoords: np.ndarray
    ycoords: np.ndarray
    probe: np.ndarray
    obj: np.ndarray | None = None
    scan_index: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return int(self.diffraction.shape[0])

    @property
    def patch_size(self) -> int:
        return int(self.diffraction.shape[-1])

    @property
    def positions(self) -> np.ndarray:
        """(n, 2) array of (x, y) positions."""
        return np.stack((self.xcoords, self.ycoords), axis=1)

    @property
    def object_shape(self) -> tuple[int, int]:
        """The object grid every method reconstructs on: ``objectGuess``'s, else the one rule
        of :func:`ptypinn.physics.geometry.object_grid_shape`.

        Without a reference object, positions so far apart that the grid would span more than
        ``GRID_MARGIN`` times the area of all patterns together are refused: they are not object
        pixels of one scan (and the grid would not fit in memory).
        """
        if self.obj is not None:
            return int(self.obj.shape[0]), int(self.obj.shape[1])
        shape = object_grid_shape(self.positions, self.patch_size)
        size = self.patch_size
        if shape[0] * shape[1] > GRID_MARGIN * self.count * size**2:
            reach = f"({self.xcoords.max():.6g}, {self.ycoords.max():.6g}) px"
            raise DatasetError(
                f"the positions reach {reach}: a {shape[0]} x {shape[1]} px grid, far more than "
                f"{self.count} patterns of {size}x{size} px can cover; positions must be object "
                "pixels of one scan (or give the data an objectGuess that sets the grid)"
            )
        return shape

    @property
    def geometry(self) -> Geometry:
        """The recorded geometry (``metadata["geometry"]``), else the stated default."""
        return dataset_geometry(self.metadata, self.patch_size)

    def subset(self, indices: np.ndarray, **metadata: object) -> PtychoDataset:
        """The patterns at ``indices`` (in that order), with ``metadata`` merged into the
        provenance."""
        indices = np.asarray(indices, dtype=np.int64)
        return replace(
            self,
            diffraction=self.diffraction[indices],
            xcoords=self.xcoords[indices],
            ycoords=self.ycoords[indices],
            scan_index=None if self.scan_index is None else self.scan_index[indices],
            metadata={**self.metadata, **metadata},
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "diffraction": self.diffraction,
            "xcoords": self.xcoords,
            "ycoords": self.ycoords,
            "probeGuess": self.probe,
        }
        if self.obj is not None:
            arrays["objectGuess"] = self.obj
        if self.scan_index is not None:
            arrays["scan_index"] = self.scan_index
        arrays["metadata"] = metadata_entry(self.metadata)
        return arrays


def metadata_entry(metadata: Mapping) -> np.ndarray:
    """The NPZ ``metadata`` entry: a JSON object as a 0-d string array (no pickle needed)."""
    return np.array(json.dumps(metadata, sort_keys=True))


def read_metadata(arrays: Mapping[str, np.ndarray]) -> object:
    """The decoded ``metadata`` entry of NPZ arrays (``{}`` when absent); raises ``ValueError``
    if it is not JSON."""
    return json.loads(str(np.asarray(arrays["metadata"])[()])) if "metadata" in arrays else {}


def check_finite(name: str, array: np.ndarray, problems: list[str]) -> None:
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if bad:
        problems.append(f"{name} contains {bad} NaN or infinite values")


def _check_diffraction(diffraction: np.ndarray, problems: list[str]) -> None:
    if diffraction.ndim != 3 or diffraction.shape[1] != diffraction.shape[2]:
        problems.append(f"diffraction must have shape (n, N, N), got {diffraction.shape}")
        return
    if np.issubdtype(diffraction.dtype, np.integer):
        problems.append(
            f"diffraction has integer dtype {diffraction.dtype}: "
            "it looks like photon counts (intensity); "
            "the contract stores float32 amplitudes, sqrt(counts) divided by the dose scale"
        )
        return
    if np.iscomplexobj(diffraction):
        problems.append("diffraction is complex: it must be the real far-field amplitude |Psi|")
        return
    if diffraction.dtype != np.float32:
        problems.append(f"diffraction must be float32, got {diffraction.dtype}")
    check_finite("diffraction", diffraction, problems)
    finite = diffraction[np.isfinite(diffraction)]
    if finite.size and finite.min() < 0:
        problems.append(
            f"diffraction has negative values (min {finite.min():.3g}): amplitudes are >= 0"
        )
    elif finite.size and not finite.any():
        problems.append("diffraction is zero everywhere: the patterns hold no signal")


def _check_coords(arrays: Mapping[str, np.ndarray], count: int | None, problems: list[str]) -> None:
    for name in ("xcoords", "ycoords"):
        coords = arrays[name]
        if coords.ndim != 1:
            problems.append(f"{name} must be 1-D, got shape {coords.shape}")
            continue
        if coords.dtype != np.float64:
            problems.append(f"{name} must be float64, got {coords.dtype}")
        if count is not None and coords.shape[0] != count:
            problems.append(
                f"{name} has {coords.shape[0]} entries but diffraction has {count} patterns"
            )
        check_finite(name, coords, problems)


def _check_complex_image(name: str, array: np.ndarray, problems: list[str]) -> None:
    if array.ndim != 2:
        problems.append(f"{name} must be a 2-D complex array, got shape {array.shape}")
        return
    if array.dtype != np.complex64:
        problems.append(f"{name} must be complex64, got {array.dtype}")
    if not np.issubdtype(array.dtype, np.number):
        return
    check_finite(name, array, problems)
    if array.size and not np.any(np.abs(array[np.isfinite(array)]) > 0):
        problems.append(f"{name} is zero everywhere")


def energy_ratio(diffraction: np.ndarray, probe: np.ndarray, chunk: int = 1024) -> float:
    """Mean over patterns of ``sum(A^2) / sum(|P|^2)``: at most 1 for normalised amplitudes of a
    passive object (Parseval), far above it for intensities or photon counts."""
    total = 0.0
    for start in range(0, diffraction.shape[0], chunk):
        block = diffraction[start : start + chunk]
        total += float(np.sum(np.square(block, dtype=np.float64)))
    probe_energy = float(np.sum(np.abs(probe.astype(np.complex128)) ** 2))
    return total / diffraction.shape[0] / probe_energy


def _check_scale(diffraction: np.ndarray, probe: np.ndarray, problems: list[str]) -> None:
    """Refuse diffraction that carries more photons than the probe: intensities or counts given
    as amplitudes (the message says which it looks like and how to convert it)."""
    ratio = energy_ratio(diffraction, probe)
    if ratio <= MAX_ENERGY_RATIO:
        return
    message = (
        f"diffraction carries {ratio:.4g} times the probe's energy (mean over patterns of "
        f"sum(diffraction^2) / sum(|probeGuess|^2); at most 1 for normalised amplitudes of a "
        f"passive object, refused above {MAX_ENERGY_RATIO:g})"
    )
    root = energy_ratio(np.sqrt(diffraction), probe)
    if root <= MAX_ENERGY_RATIO:
        message += (
            f": it looks like intensities (amplitude squared; their square root gives "
            f"{root:.3g}); store np.sqrt(diffraction) instead"
        )
    else:
        message += (
            ": it looks like photon counts or unnormalised amplitudes; store "
            "sqrt(counts) / s with s = sqrt(mean over patterns of sum(counts) / "
            "sum(|probeGuess|^2)), as `ptypinn convert` does for CXI files"
        )
    problems.append(message)


def _check_images(arrays: Mapping[str, np.ndarray], size: int | None, problems: list[str]) -> None:
    """The probe and object checks, shared by datasets and object/probe files: complex64, finite,
    not zero everywhere, the probe ``size x size`` (if known) and the object at least as large."""
    probe_shape = None
    if "probeGuess" in arrays:
        probe = np.asarray(arrays["probeGuess"])
        _check_complex_image("probeGuess", probe, problems)
        if probe.ndim == 2:
            probe_shape = probe.shape
        if size is not None and probe.shape != (size, size):
            problems.append(
                f"probeGuess has shape {probe.shape} but the diffraction patterns are {size}x{size}"
            )
    if "objectGuess" in arrays:
        obj = np.asarray(arrays["objectGuess"])
        _check_complex_image("objectGuess", obj, problems)
        patch = size or (probe_shape[0] if probe_shape else None)
        if obj.ndim == 2 and patch is not None and min(obj.shape) < patch:
            problems.append(f"objectGuess {obj.shape} is smaller than one {patch}x{patch} patch")


def validate_arrays(
    arrays: Mapping[str, np.ndarray], gridsize: int = 1, neighbor_count: int | None = None
) -> None:
    """Check ``arrays`` against the contract; raise :class:`DatasetError` listing every problem.

    ``gridsize`` and ``neighbor_count`` (K) add the grouping requirements: K >= C = gridsize**2
    and at least C positions.
    """
    problems: list[str] = []
    for key in REQUIRED_KEYS:
        if key not in arrays:
            hints = [hint for legacy, hint in LEGACY_HINTS.items() if legacy in arrays]
            problems.append(f"missing key {key!r}" + (f" ({'; '.join(hints)})" if hints else ""))
    unknown = sorted(set(arrays) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        problems.append(
            f"unexpected keys {unknown}; allowed: {list(REQUIRED_KEYS + OPTIONAL_KEYS)}"
        )

    count = size = None
    if "diffraction" in arrays:
        diffraction = np.asarray(arrays["diffraction"])
        _check_diffraction(diffraction, problems)
        if diffraction.ndim == 3:
            count, size = diffraction.shape[0], diffraction.shape[-1]
            if count == 0:
                problems.append("diffraction holds no patterns")
    if "xcoords" in arrays and "ycoords" in arrays:
        _check_coords({k: np.asarray(arrays[k]) for k in ("xcoords", "ycoords")}, count, problems)
    _check_images(arrays, size, problems)
    if not problems:  # the physical check needs well-formed, finite arrays
        _check_scale(np.asarray(arrays["diffraction"]), np.asarray(arrays["probeGuess"]), problems)
    if "objectGuess" in arrays:
        obj = np.asarray(arrays["objectGuess"])
        x, y = np.asarray(arrays.get("xcoords", [])), np.asarray(arrays.get("ycoords", []))
        if obj.ndim == 2 and x.ndim == 1 and x.shape == y.shape:
            outside = int(
                np.count_nonzero(
                    (x < 0) | (x > obj.shape[1] - 1) | (y < 0) | (y > obj.shape[0] - 1)
                )
            )
            if outside:
                problems.append(
                    f"{outside} positions lie outside objectGuess "
                    f"({obj.shape[1]} x {obj.shape[0]} px)"
                )
    if "scan_index" in arrays:
        scan_index = np.asarray(arrays["scan_index"])
        if not np.issubdtype(scan_index.dtype, np.integer) or scan_index.ndim != 1:
            problems.append(
                f"scan_index must be a 1-D integer array, got {scan_index.dtype} {scan_index.shape}"
            )
        elif count is not None and scan_index.shape[0] != count:
            problems.append(
                f"scan_index has {scan_index.shape[0]} entries but diffraction has {count} patterns"
            )
    if "metadata" in arrays:
        try:
            if not isinstance(read_metadata(arrays), dict):
                raise ValueError
        except ValueError:
            problems.append("metadata must be a JSON object stored as a string")

    group = gridsize**2
    problem = None if neighbor_count is None else neighbours_problem(gridsize, neighbor_count)
    if problem:
        problems.append(problem)
    if count is not None and count < group:
        problems.append(f"only {count} positions, fewer than the C={group} a group needs")

    if problems:
        raise DatasetError("\n  ".join(["dataset breaks the contract:", *problems]))


def dataset_from_arrays(arrays: Mapping[str, np.ndarray]) -> PtychoDataset:
    """Validate ``arrays`` and wrap them in a :class:`PtychoDataset`."""
    validate_arrays(arrays)
    metadata = read_metadata(arrays)
    assert isinstance(metadata, dict)  # validate_arrays checked it
    return PtychoDataset(
        diffraction=np.asarray(arrays["diffraction"]),
        xcoords=np.asarray(arrays["xcoords"]),
        ycoords=np.asarray(arrays["ycoords"]),
        probe=np.asarray(arrays["probeGuess"]),
        obj=np.asarray(arrays["objectGuess"]) if "objectGuess" in arrays else None,
        scan_index=np.asarray(arrays["scan_index"]) if "scan_index" in arrays else None,
        metadata=metadata,
    )


def _member_header(member: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype an ``.npy`` member's header states (nothing else is read)."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return tuple(shape), dtype


def check_npz_headers(path: str | os.PathLike) -> None:
    """Read every member's header and refuse, before any array is loaded, a member that claims
    more bytes than it holds, Python objects (pickle), or arrays that need more memory than
    :func:`~ptypinn.io.limits.memory_limit_bytes` allows together."""
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                total += info.file_size
                continue
            key = info.filename.removesuffix(".npy")
            with archive.open(info) as member:
                try:
                    shape, dtype = _member_header(member)
                except ValueError as error:
                    raise DatasetError(
                        f"{path}: {key!r} has no readable .npy header: {error}"
                    ) from None
                header = member.tell()
            if dtype.hasobject:
                raise DatasetError(
                    f"{path} stores Python objects (pickle) in {key!r}; "
                    "the contract allows plain arrays only"
                )
            claimed = claimed_bytes(shape, dtype.itemsize)
            if claimed > info.file_size - header:
                raise DatasetError(
                    f"{path}: {key!r} claims shape {shape} {dtype} ({claimed} bytes) but holds "
                    f"only {info.file_size - header} bytes: the file is damaged or forged"
                )
            total += claimed
    check_allocation(total, f"{path} (its arrays)")


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an NPZ file, loaded without pickle; unreadable files raise
    :class:`DatasetError`."""
    path = Path(path)
    if path.is_file() and not zipfile.is_zipfile(path):
        raise DatasetError(f"{path} is not a readable NPZ file (not a zip archive)")
    try:
        check_npz_headers(path)
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise DatasetError(f"no such file: {path}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise DatasetError(f"{path} is not a readable NPZ file: {error}") from None
    except DatasetError:
        raise
    except TooLargeError as error:
        raise DatasetError(str(error)) from None
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise DatasetError(
                f"{path} stores Python objects (pickle); the contract allows plain arrays only"
            ) from None
        raise DatasetError(f"{path} is not a readable NPZ file: {error}") from None


def load_dataset(path: str | os.PathLike) -> PtychoDataset:
    """Read and validate a canonical NPZ; problems raise :class:`DatasetError` naming the file."""
    try:
        return dataset_from_arrays(read_npz(path))
    except DatasetError as error:
        raise DatasetError(f"{path}: {error}") from None


def save_dataset(path: str | os.PathLike, dataset: PtychoDataset) -> Path:
    """Validate ``dataset`` and write it as a canonical NPZ (atomic, byte-reproducible)."""
    arrays = dataset.to_arrays()
    validate_arrays(arrays)
    return write_npz(path, arrays)
