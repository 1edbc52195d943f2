"""Far-field experiment geometry: photon energy, detector distance, pixel sizes, position frame.

Object pixels and metres are related by the far-field sampling condition: an ``N x N`` detector
of pixel pitch ``p`` at distance ``z`` sees the object with pixel size ``dx = lambda z / (N p)``
(per axis; x uses the detector's x pitch and width, y its y pitch and height).

Positions in metres live in one world frame (probe position on the object, ``x`` right,
``y`` down the rows); object pixel ``(c, r)`` sits at ``origin + (c dx, r dy)``, so a dataset's
``xcoords`` are ``(x_m - origin_x) / dx``. A dataset keeps its geometry in
``metadata["geometry"]`` (see :meth:`Geometry.to_metadata`); a dataset without one (e.g. a
simulation) gets :func:`default_geometry`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

PLANCK_TIMES_C_J_M = 6.62607015e-34 * 299792458.0  # h c, exact SI: lambda = h c / E
ELECTRON_VOLT_J = 1.602176634e-19

# Defaults for data that carry no geometry (simulations): a 10 keV hard-X-ray beam, a detector
# 2 m downstream with 75 um pixels (Eiger-like). At N = 128 this gives dx = 25.8 nm.
DEFAULT_PHOTON_ENERGY_EV = 10_000.0
DEFAULT_DETECTOR_DISTANCE_M = 2.0
DEFAULT_DETECTOR_PIXEL_M = 75e-6
DEFAULT_SOURCE = (
    "ptypinn default: 10 keV, detector at 2 m with 75 um pixels, origin at object pixel (0, 0)"
)


def wavelength_from_energy(energy_J: float) -> float:
    return PLANCK_TIMES_C_J_M / energy_J


def xy_pair(values: Iterable[float]) -> tuple[float, float]:
    """The two values ``(x, y)`` of ``values`` as a pair (more or fewer raise ``ValueError``)."""
    x, y = values
    return x, y


@dataclass(frozen=True)
class Geometry:
    """Where a dataset's pixels are in the world (SI units; pairs are ``(x, y)``)."""

    photon_energy_eV: float
    detector_distance_m: float
    object_pixel_size_m: tuple[float, float]
    position_origin_m: tuple[float, float]
    source: str

    @classmethod
    def from_detector(
        cls,
        photon_energy_eV: float,
        detector_distance_m: float,
        detector_pixel_size_m: tuple[float, float],
        patch_size: int,
        position_origin_m: tuple[float, float] = (0.0, 0.0),
        source: str = "",
    ) -> Geometry:
        """Geometry whose object pixel follows from the detector: ``dx = lambda z / (N p)``."""
        wavelength = wavelength_from_energy(photon_energy_eV * ELECTRON_VOLT_J)
        pixel = xy_pair(
            wavelength * detector_distance_m / (patch_size * p) for p in detector_pixel_size_m
        )
        return cls(photon_energy_eV, detector_distance_m, pixel, xy_pair(position_origin_m), source)

    @property
    def photon_energy_J(self) -> float:
        return self.photon_energy_eV * ELECTRON_VOLT_J

    @property
    def wavelength_m(self) -> float:
        return wavelength_from_energy(self.photon_energy_J)

    def detector_pixel_size_m(self, patch_size: int) -> tuple[float, float]:
        """Detector pitch ``p = lambda z / (N dx)`` that gives this object pixel at ``N``."""
        return xy_pair(
            self.wavelength_m * self.detector_distance_m / (patch_size * dx)
            for dx in self.object_pixel_size_m
        )

    def to_pixels(self, positions_m: np.ndarray) -> np.ndarray:
        """(n, 2) world positions in metres -> object pixels ``(x, y)``."""
        return (
            np.asarray(positions_m, dtype=np.float64) - self.position_origin_m
        ) / self.object_pixel_size_m

    def to_metres(self, positions_px: np.ndarray) -> np.ndarray:
        """(n, 2) object pixels ``(x, y)`` -> world positions in metres."""
        return (
            np.asarray(positions_px, dtype=np.float64) * self.object_pixel_size_m
            + self.position_origin_m
        )

    def object_center_m(self, object_shape: tuple[int, int]) -> tuple[float, float]:
        """World position of the centre of an ``(H, W)`` object (pixel ``((W-1)/2, (H-1)/2)``)."""
        height, width = object_shape
        centre = self.to_metres(np.array([[(width - 1) / 2, (height - 1) / 2]]))[0]
        return float(centre[0]), float(centre[1])

    def to_metadata(self, patch_size: int) -> dict:
        """JSON form stored in ``metadata["geometry"]`` (derived values included for readers)."""
        return {
            "photon_energy_eV": self.photon_energy_eV,
            "wavelength_m": self.wavelength_m,
            "detector_distance_m": self.detector_distance_m,
            "detector_pixel_size_m": list(self.detector_pixel_size_m(patch_size)),
            "object_pixel_size_m": list(self.object_pixel_size_m),
            "position_origin_m": list(self.position_origin_m),
            "source": self.source,
        }

    @classmethod
    def from_metadata(cls, entry: Mapping) -> Geometry:
        return cls(
            photon_energy_eV=float(entry["photon_energy_eV"]),
            detector_distance_m=float(entry["detector_distance_m"]),
            object_pixel_size_m=xy_pair(float(v) for v in entry["object_pixel_size_m"]),
            position_origin_m=xy_pair(float(v) for v in entry["position_origin_m"]),
            source=str(entry.get("source", "")),
        )


def default_geometry(patch_size: int) -> Geometry:
    """The stated default geometry (see the module constants) for an ``N = patch_size`` dataset."""
    pitch = (DEFAULT_DETECTOR_PIXEL_M, DEFAULT_DETECTOR_PIXEL_M)
    return Geometry.from_detector(
        DEFAULT_PHOTON_ENERGY_EV,
        DEFAULT_DETECTOR_DISTANCE_M,
        pitch,
        patch_size,
        source=DEFAULT_SOURCE,
    )


def dataset_geometry(metadata: Mapping, patch_size: int) -> Geometry:
    """The geometry recorded in a dataset's metadata, or the default one."""
    entry = metadata.get("geometry")
    return (
        Geometry.from_metadata(entry)
        if isinstance(entry, Mapping)
        else default_geometry(patch_size)
    )


def object_grid_shape(positions_px: np.ndarray, patch_size: int) -> tuple[int, int]:
    """``(H, W)`` of the object grid, from pixel ``(0, 0)``, that a scan reconstructs on.

    The one rule for a dataset without a reference object (and for a product's grid): every
    position ``p`` satisfies ``p <= size - N/2 - 1``, the range
    :func:`ptypinn.physics.forward.scan_bounds` allows, so each ``N x N`` window and its bilinear
    neighbour fit; the grid is never smaller than one window.
    """
    half = patch_size // 2
    high = np.asarray(positions_px, dtype=np.float64).max(axis=0)
    width, height = (max(math.ceil(value - 1e-9) + half + 1, patch_size) for value in high)
    return height, width


def fit_object_grid(
    positions_m: np.ndarray, pixel_size_m: tuple[float, float], patch_size: int
) -> tuple[tuple[float, float], tuple[int, int]]:
    """Origin (metres) and ``(H, W)`` of the smallest object grid that holds every patch.

    The left/top-most position lands on pixel ``N/2``; the size follows
    :func:`object_grid_shape`.
    """
    half = patch_size // 2
    pixels = np.asarray(positions_m, dtype=np.float64) / pixel_size_m
    low = pixels.min(axis=0)
    origin = xy_pair(float(v) for v in (low - half) * pixel_size_m)
    return origin, object_grid_shape(pixels - low + half, patch_size)
