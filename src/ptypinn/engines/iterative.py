"""Classical iterative reconstruction (phase F) through a maintained library.

One small interface, :func:`reconstruct`, runs an engine on a :class:`ReconstructionInput` and
returns a :class:`ReconstructionResult` whose object lies on *our* pixel grid and position
convention, so :func:`ptypinn.analysis.metrics.align` compares it to ``objectGuess`` directly.

Engines:

* ``cdtools`` (default): CDTools (automatic differentiation, PyTorch, CPU) with a model built
  from CDTools parts that samples the object like our simulator
  (:mod:`ptypinn.engines.cdtools`), fitted with CDTools' Adam optimiser (with its plateau learning-rate schedule) on the
  amplitude-MSE loss.
  The object starts flat (ones); the probe is the known ``probeGuess`` and stays fixed unless
  ``refine_probe=True``.
* ``ptychi``: pty-chi (LSQML). It imports torchvision at module level, which needs a build that
  matches the installed torch; where it cannot be imported :func:`reconstruct` raises
  :class:`EngineUnavailable` saying why and what to install. ptypinn has no pty-chi adapter yet,
  so the engine is reported unavailable even where the import works.

Convention cross-walk between ptypinn and CDTools (every conversion lives in this module):

* Diffraction: we store the amplitude ``A = |fftshift(FFT2(psi))| / N``; CDTools fits the
  intensity ``|fftshift(FFT2(ifftshift(psi)))|**2 / N**2``. The ``ifftshift`` only multiplies
  the spectrum by ``(-1)**(k + l)`` for even N, so the patterns are ``A**2`` with the zero
  frequency left at ``[N/2, N/2]``: no re-shifting (:func:`amplitude_to_intensity`).
* Geometry (:class:`Geometry`): CDTools derives the object pixel from the detector as
  ``wavelength * distance / (N * detector_pixel)``. We fix a 10 keV wavelength and a 75 um
  detector pixel and choose the distance that makes this a nominal 10 nm object pixel; the
  detector basis maps array axis 0 (rows) to lab ``y`` and axis 1 (columns) to lab ``x``.
* Positions: our ``(x, y)`` probe centres in object pixels become CDTools translations
  ``(x, y, 0) * object_pixel`` in metres (:func:`positions_to_translations`); CDTools turns them
  into ``(row, column)`` pixels and subtracts ``min_translation``, which we set so the result is
  the top-left corner of the probe window in the (padded) engine object (:class:`ObjectFrame`);
  the engine then samples the object bilinearly at the sub-pixel remainder, as we do.
* Object: the engine object is ours padded (with ones) where a probe window, or its bilinear
  neighbour, would leave it (:func:`to_engine_object`, :func:`from_engine_object`).
* Probe: the same ``(N, N)`` array on the same grid, no flips or shifts.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ptypinn.io.dataset import DatasetError, PtychoDataset
from ptypinn.io.progress import progress_bar

if TYPE_CHECKING:
    import torch

ENGINES = ("cdtools", "ptychi")
DEFAULT_ENGINE = "cdtools"
DEFAULT_ITERATIONS = 100
DEFAULT_LEARNING_RATE = 0.05
DEFAULT_BATCH_SIZE = 16

WAVELENGTH_M = 1.23984e-10  # 10 keV photons
DETECTOR_PIXEL_M = 75e-6
OBJECT_PIXEL_M = 10e-9  # nominal: our data are in object pixels, the metre scale only has to be consistent

PTYCHI_MODULE = "ptychi.api.task"


class EngineUnavailable(RuntimeError):
    """The requested reconstruction engine cannot run in this environment."""


# --------------------------------------------------------------------------------------------
# Interface


@dataclass(frozen=True)
class ReconstructionInput:
    """What an engine reconstructs from, in ptypinn conventions.

    ``diffraction_amplitude`` (n, N, N) far-field amplitudes (zero frequency at ``[N/2, N/2]``),
    ``positions_px`` (n, 2) probe centres as (x, y) object pixels, ``probe`` (N, N) complex on the
    object pixel grid, ``object_shape`` (H, W) of the object grid to reconstruct on.
    """

    diffraction_amplitude: np.ndarray
    positions_px: np.ndarray
    probe: np.ndarray
    object_shape: tuple[int, int]

    def __post_init__(self) -> None:
        shape = self.diffraction_amplitude.shape
        if len(shape) != 3 or shape[1] != shape[2] or shape[0] == 0:
            raise DatasetError(f"diffraction must be a non-empty (n, N, N) stack, got {shape}")
        count, size = shape[0], shape[2]
        if size % 2:
            raise DatasetError(f"patterns must have an even size N, got {size}")
        if self.positions_px.shape != (count, 2):
            raise DatasetError(f"positions must be ({count}, 2) as (x, y), got {self.positions_px.shape}")
        if self.probe.shape != (size, size):
            raise DatasetError(f"probe must be {size}x{size} like the patterns, got {self.probe.shape}")
        if len(self.object_shape) != 2 or min(self.object_shape) < size:
            raise DatasetError(f"object shape {self.object_shape} must be 2-D and at least {size} px on each side")

    @property
    def patch_size(self) -> int:
        return int(self.diffraction_amplitude.shape[-1])

    @classmethod
    def from_dataset(cls, dataset: PtychoDataset, object_shape: tuple[int, int] | None = None) -> ReconstructionInput:
        """Input from a canonical dataset; the object grid is ``objectGuess``'s unless given.

        Without either, the grid is the smallest one (from pixel 0) that holds every probe window.
        """
        if object_shape is None:
            if dataset.obj is not None:
                object_shape = dataset.obj.shape
            else:
                half = dataset.patch_size // 2
                object_shape = (
                    max(int(math.ceil(dataset.ycoords.max())) + half + 1, dataset.patch_size),
                    max(int(math.ceil(dataset.xcoords.max())) + half + 1, dataset.patch_size),
                )
        return cls(
            diffraction_amplitude=dataset.diffraction,
            positions_px=dataset.positions,
            probe=dataset.probe,
            object_shape=(int(object_shape[0]), int(object_shape[1])),
        )


@dataclass(frozen=True)
class ReconstructionResult:
    """An engine's reconstruction on our object grid and position convention.

    ``losses`` holds the engine's loss after every iteration (CDTools: amplitude MSE per pixel).
    ``wall_time_s`` covers the iterations only (not imports or set-up).
    """

    obj: np.ndarray
    probe: np.ndarray
    positions_px: np.ndarray
    losses: np.ndarray
    wall_time_s: float
    iterations: int
    engine: str
    probe_refined: bool
    settings: dict = field(default_factory=dict)


def reconstruct(
    inp: ReconstructionInput,
    engine: str = DEFAULT_ENGINE,
    iterations: int = DEFAULT_ITERATIONS,
    seed: int = 0,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    refine_probe: bool = False,
    threads: int = 1,
    progress: str | None = "iterative reconstruction",
) -> ReconstructionResult:
    """Reconstruct ``inp`` with ``engine``; ``progress`` labels the progress bar (``None``: no bar).

    ``seed`` fixes the minibatch order, so a CPU run repeats exactly. ``threads`` sets torch's
    intra-op threads for the run: CDTools works on many small arrays, where extra threads cost far
    more in synchronisation than they gain (27x slower with 2 threads on a busy 2-core machine).
    """
    require_engine(engine)
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    if not learning_rate > 0 or batch_size < 1:
        raise ValueError(f"learning rate must be positive and batch size at least 1, got {learning_rate} and {batch_size}")
    settings = {
        "optimizer": "Adam, learning rate cut 5x after 10 iterations without improvement (CDTools schedule=True)",
        "loss": "amplitude mse",
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "seed": seed,
        "threads": threads,
    }
    from ptypinn.engines.cdtools import run_cdtools

    if progress is None:
        return run_cdtools(inp, iterations, seed, learning_rate, batch_size, refine_probe, threads, lambda n: None, settings)
    with progress_bar(progress, iterations) as advance:
        return run_cdtools(inp, iterations, seed, learning_rate, batch_size, refine_probe, threads, advance, settings)


# --------------------------------------------------------------------------------------------
# Engine availability


def ptychi_import_error() -> str | None:
    """Why pty-chi cannot be imported here (``None`` if it can)."""
    try:
        importlib.import_module(PTYCHI_MODULE)
    except Exception as error:  # ImportError, or OSError/RuntimeError from a torchvision built for another torch
        return f"{type(error).__name__}: {error}"
    return None


def require_engine(engine: str) -> None:
    """Raise :class:`EngineUnavailable` unless ``engine`` can run here."""
    if engine not in ENGINES:
        raise EngineUnavailable(f"unknown engine {engine!r}; choose one of {list(ENGINES)}")
    if engine != "ptychi":
        return
    error = ptychi_import_error()
    if error is not None:
        torch_version = importlib.metadata.version("torch")
        raise EngineUnavailable(
            f"engine 'ptychi' (pty-chi, PyPI package 'ptychi') cannot be imported: {error}. "
            f"pty-chi imports torchvision at module level, and torchvision must be built for the installed torch "
            f"({torch_version}); a CPU-only torch often has no matching build. Install both into an environment "
            f"where `python -c 'import {PTYCHI_MODULE}'` works (`pip install ptychi torchvision==<the release matching "
            f"torch {torch_version.split('+')[0]}>`), or use --engine cdtools (the default)."
        )
    raise EngineUnavailable(
        "pty-chi imports here, but ptypinn has no pty-chi adapter yet; use --engine cdtools (the default)."
    )


# --------------------------------------------------------------------------------------------
# Conventions: ptypinn <-> CDTools


def amplitude_to_intensity(amplitude: np.ndarray) -> np.ndarray:
    """CDTools patterns (float32 intensity, zero frequency still at ``[N/2, N/2]``) from our amplitudes."""
    return np.square(np.asarray(amplitude, dtype=np.float32))


@dataclass(frozen=True)
class Geometry:
    """A far-field geometry whose CDTools object pixel is ``object_pixel_m`` for ``N x N`` patterns."""

    patch_size: int
    wavelength_m: float = WAVELENGTH_M
    detector_pixel_m: float = DETECTOR_PIXEL_M
    object_pixel_m: float = OBJECT_PIXEL_M

    @property
    def distance_m(self) -> float:
        """Sample-detector distance giving that object pixel: ``p_obj N p_det / wavelength``."""
        return self.object_pixel_m * self.patch_size * self.detector_pixel_m / self.wavelength_m

    def detector_basis(self) -> np.ndarray:
        """(3, 2) lab vectors of one detector pixel along array axes 0 (rows -> y) and 1 (columns -> x)."""
        pixel = self.detector_pixel_m
        return np.array([[0.0, pixel], [pixel, 0.0], [0.0, 0.0]], dtype=np.float32)

    def detector_geometry(self) -> dict[str, object]:
        return {"distance": self.distance_m, "basis": self.detector_basis()}


def positions_to_translations(positions_px: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(n, 3) float32 CDTools translations in metres from (n, 2) (x, y) probe centres in object pixels."""
    positions = np.asarray(positions_px, dtype=np.float64)
    lateral = positions * geometry.object_pixel_m
    return np.concatenate((lateral, np.zeros((positions.shape[0], 1))), axis=1).astype(np.float32)


@dataclass(frozen=True)
class ObjectFrame:
    """Our (H, W) object grid inside the engine's padded object array.

    ``pad`` is (top, bottom, left, right) in pixels. Engine pixel ``[r, c]`` is our pixel
    ``[r - top, c - left]``.
    """

    shape: tuple[int, int]
    pad: tuple[int, int, int, int]

    @classmethod
    def around(cls, positions_px: np.ndarray, patch_size: int, shape: tuple[int, int], margin: int = 1) -> ObjectFrame:
        """The frame that holds every probe window of ``positions_px``, plus ``margin`` px on each
        side for the bilinear neighbour and for float32 rounding of the corner."""
        half = patch_size // 2
        x, y = np.asarray(positions_px, dtype=np.float64).T
        top = max(0, -math.floor(y.min() - half)) + margin
        left = max(0, -math.floor(x.min() - half)) + margin
        bottom = max(0, math.floor(y.max() - half) + patch_size - shape[0]) + margin
        right = max(0, math.floor(x.max() - half) + patch_size - shape[1]) + margin
        return cls(shape=(int(shape[0]), int(shape[1])), pad=(top, bottom, left, right))

    @property
    def engine_shape(self) -> tuple[int, int]:
        top, bottom, left, right = self.pad
        return self.shape[0] + top + bottom, self.shape[1] + left + right

    def min_translation(self, patch_size: int) -> np.ndarray:
        """CDTools ``min_translation`` (row, column) that maps a probe centre to its window's corner."""
        top, _, left, _ = self.pad
        return np.array([patch_size // 2 - top, patch_size // 2 - left], dtype=np.float32)


def to_engine_object(obj: np.ndarray, frame: ObjectFrame) -> np.ndarray:
    """Our object padded with ones (free space) into the engine array, complex64."""
    top, bottom, left, right = frame.pad
    return np.pad(np.asarray(obj, dtype=np.complex64), ((top, bottom), (left, right)), constant_values=1)


def from_engine_object(engine_obj: torch.Tensor, frame: ObjectFrame) -> np.ndarray:
    """Our (H, W) grid cut out of the engine object, complex64."""
    top, _, left, _ = frame.pad
    height, width = frame.shape
    return engine_obj.detach().cpu().numpy()[top : top + height, left : left + width].astype(np.complex64)
