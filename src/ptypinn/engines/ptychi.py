"""The pty-chi engine: LSQML (least-squares maximum likelihood), the original study's engine.

pty-chi (PyPI ``ptychi``) is imported on first use through
:func:`ptypinn.engines.torchvision_shim.import_with_torchvision`, so it works where torchvision
cannot load. The object starts flat (ones) unless the input has a starting object; the probe is
the input's and stays fixed unless ``refine_probe`` (then LSQML also rescales object and probe
against each other every 10 epochs); positions are not refined.

Convention cross-walk between ptypinn and pty-chi (read from pty-chi 2.2: ``api/task.py``,
``io_handles.py``, ``forward_models.py``, ``image_proc.py``, ``data_structures/object.py``;
every conversion lives in this module):

* Diffraction: pty-chi fits the intensity ``|FFT2(psi)|**2`` of an *unnormalised* FFT with the
  zero frequency at ``[0, 0]``, and ``fftshift``-s data given centred
  (``data_options.fft_shift``, set). Our amplitude is ``|fftshift(FFT2(psi))| / N``, so the
  data are ``(N A)**2``, still centred (:func:`to_ptychi_intensity`,
  :func:`from_ptychi_intensity`). Its loss (the MSE of square-rooted intensities) is divided by
  ``N**2`` to be the amplitude MSE per detector pixel in our units.
* Probe: ``(opr_modes, incoherent_modes, N, N)``; ours is one of each, ``probe[None, None]``
  (:func:`to_ptychi_probe`, :func:`from_ptychi_probe`).
* Object: ``(slices, H', W')``; ours is one slice, padded with ones so every window fits
  (:mod:`ptypinn.engines.frame`, :func:`to_ptychi_object`, :func:`from_ptychi_object`).
* Positions: pty-chi takes ``x`` and ``y`` separately, in object pixels, relative to an origin
  ``position_origin_coords`` (row, column) in its object array. LSQML cuts each object patch at
  whole pixels starting at ``round(p + origin - (N - 1) / 2)`` and shifts the *probe* by the
  sub-pixel remainder ``p - round(p)``. With the origin ``(top - 1/2, left - 1/2)`` of the
  padded frame (:func:`ptychi_origin`) the patch at a whole-pixel position is exactly our window
  ``obj[y - N/2 :, x - N/2 :]``. At a sub-pixel position its exit wave is ours moved by the
  remainder, which leaves the far-field intensity unchanged up to interpolation: on noise-free
  jittered data LSQML's model misfits by about 6 % in amplitude (as CDTools' probe-shifting
  ``FancyPtycho`` does), against 1e-6 at whole-pixel positions.
* Units: the object pixel size and the wavelength come from the input's geometry (pty-chi only
  uses them for multislice objects and grid-artefact removal, both off here).
* Global state: a pty-chi task sets torch's default device and dtype and seeds torch, numpy and
  ``random`` globally; :func:`contained` puts all of them back after the run.
"""

from __future__ import annotations

import contextlib
import importlib
import random
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import torch

from ptypinn.engines.api import Advance, EngineUnavailable, PtychiOptions, Stopwatch
from ptypinn.engines.frame import ObjectFrame, from_engine_object, to_engine_object
from ptypinn.engines.torchvision_shim import TorchvisionStatus, import_with_torchvision
from ptypinn.io.reconstruction import Reconstruction, ReconstructionInput
from ptypinn.pinn.runtime import torch_threads

METHOD = "ptychi"
LOSS = (
    "pty-chi LSQML displayed loss (MSE of amplitudes) / N^2: amplitude MSE per detector pixel "
    "in our units, mean over each epoch's minibatches"
)

# --------------------------------------------------------------------------------------------
# Conventions: ptypinn <-> pty-chi


def to_ptychi_intensity(amplitude: np.ndarray) -> np.ndarray:
    """pty-chi data (float32 intensity of an unnormalised FFT, still centred) from amplitudes."""
    amplitude = np.asarray(amplitude, dtype=np.float32)
    return np.square(amplitude * np.float32(amplitude.shape[-1]))


def from_ptychi_intensity(intensity: np.ndarray) -> np.ndarray:
    """Our amplitudes from centred pty-chi intensities."""
    intensity = np.asarray(intensity, dtype=np.float32)
    return np.sqrt(intensity) / np.float32(intensity.shape[-1])


def to_ptychi_probe(probe: np.ndarray) -> np.ndarray:
    return np.asarray(probe, dtype=np.complex64)[None, None]


def from_ptychi_probe(probe: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(probe, torch.Tensor):
        probe = probe.detach().cpu().numpy()
    return np.asarray(probe)[0, 0].astype(np.complex64)


def to_ptychi_object(obj: np.ndarray, frame: ObjectFrame) -> np.ndarray:
    return to_engine_object(obj, frame)[None]


def from_ptychi_object(obj: np.ndarray | torch.Tensor, frame: ObjectFrame) -> np.ndarray:
    return from_engine_object(obj[0], frame)


def ptychi_origin(frame: ObjectFrame) -> tuple[float, float]:
    """``position_origin_coords`` (row, column) that puts our pixel ``(0, 0)`` where it is in the
    padded frame for LSQML's whole-pixel patches (module docstring)."""
    top, _, left, _ = frame.pad
    return top - 0.5, left - 0.5


# --------------------------------------------------------------------------------------------
# The engine


def load_ptychi() -> tuple[ModuleType, ModuleType, TorchvisionStatus]:
    """pty-chi's ``api`` and ``api.task`` modules, and how torchvision was provided."""
    try:
        task, status = import_with_torchvision("ptychi.api.task")
        api = importlib.import_module("ptychi.api")
    except Exception as error:  # not installed, or an import-time failure inside pty-chi
        raise EngineUnavailable(
            f"engine {PtychiOptions.name!r} needs {PtychiOptions.library}, which cannot be "
            f"imported: {type(error).__name__}: {error}"
        ) from None
    return api, task, status


@contextlib.contextmanager
def contained(threads: int) -> Iterator[None]:
    """Run with ``threads`` torch threads and restore the global state a pty-chi task changes."""
    dtype, device = torch.get_default_dtype(), torch.get_default_device()
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        with torch_threads(threads), torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"(?s).*tensor\.detach\(\) first")
            yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_default_device(None if device.type == "cpu" else device)
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def lsqml_options(
    api: ModuleType, inp: ReconstructionInput, options: PtychiOptions, frame: ObjectFrame
) -> object:
    """pty-chi ``LSQMLOptions`` for ``inp`` (conventions: module docstring)."""
    lsqml = api.LSQMLOptions()
    lsqml.data_options.wavelength_m = inp.geometry.wavelength_m
    lsqml.data_options.fft_shift = True
    pixel_x, pixel_y = inp.geometry.object_pixel_size_m
    obj = lsqml.object_options
    obj.pixel_size_m = pixel_x
    obj.pixel_size_aspect_ratio = pixel_x / pixel_y
    obj.determine_position_origin_coords_by = api.ObjectPosOriginCoordsMethods.SPECIFIED
    obj.position_origin_coords = list(ptychi_origin(frame))
    obj.patch_interpolation_method = api.PatchInterpolationMethods(options.patch_interpolation)
    obj.optimal_step_size_scaler = options.step_size_scaler
    obj.remove_object_probe_ambiguity.enabled = options.refine_probe
    lsqml.probe_options.optimizable = options.refine_probe
    lsqml.probe_options.optimal_step_size_scaler = options.step_size_scaler
    lsqml.probe_position_options.optimizable = False
    engine = lsqml.reconstructor_options
    engine.num_epochs = options.iterations
    engine.batch_size = options.batch_size
    engine.default_device = api.Devices.CPU
    engine.random_seed = options.seed
    engine.allow_nondeterministic_algorithms = False
    engine.rescale_probe_intensity_in_first_epoch = (
        False  # the probe is already in the data's units
    )
    engine.noise_model = api.NoiseModels(options.noise_model)
    return lsqml


class PtychiReconstructor:
    """pty-chi LSQML as a :class:`~ptypinn.engines.api.Reconstructor`."""

    method = METHOD

    def __init__(self, options: PtychiOptions | None = None) -> None:
        self.options = options or PtychiOptions()
        self.api, self.task_module, self.torchvision = load_ptychi()

    def task(self, inp: ReconstructionInput) -> tuple[Any, ObjectFrame]:
        """A pty-chi ``PtychographyTask`` for ``inp`` and the object frame it uses; build and
        run it inside :func:`contained`."""
        frame = ObjectFrame.around(inp.positions_px, inp.patch_size, inp.object_shape)
        start = inp.initial_object
        if start is None:
            start = np.ones(inp.object_shape, np.complex64)
        task = self.task_module.PtychographyTask(
            lsqml_options(self.api, inp, self.options, frame),
            diffraction_data=to_ptychi_intensity(inp.diffraction),
            object_data=to_ptychi_object(start, frame),
            probe_data=to_ptychi_probe(inp.probe),
            probe_position_x_px=np.asarray(inp.positions_px[:, 0], dtype=np.float32),
            probe_position_y_px=np.asarray(inp.positions_px[:, 1], dtype=np.float32),
        )
        return task, frame

    def reconstruct(
        self, inp: ReconstructionInput, advance: Advance | None = None
    ) -> Reconstruction:
        options = self.options
        history: list[float] = []
        with contained(options.threads):
            task, frame = self.task(inp)
            clock = Stopwatch(options.checkpoints)

            def current() -> np.ndarray:
                return from_ptychi_object(task.get_data_to_cpu("object", as_numpy=True), frame)

            clock.lap(0, current)
            for iteration in range(1, options.iterations + 1):
                task.run(1)
                loss = float(task.reconstructor.loss_tracker.table["loss"].iloc[-1])
                history.append(loss / inp.patch_size**2)
                clock.lap(iteration, current)
                if advance is not None:
                    advance(1)
            wall_time = clock.seconds
            obj = current()
            probe = from_ptychi_probe(task.get_data_to_cpu("probe", as_numpy=True))
        return Reconstruction(
            method=METHOD,
            obj=obj,
            probe=probe,
            positions_px=np.array(inp.positions_px, dtype=np.float64),  # positions are not refined
            geometry=inp.geometry,
            losses=np.asarray(history, dtype=np.float64),
            iterations=options.iterations,
            wall_time_s=wall_time,
            snapshots=tuple(clock.snapshots),
            metadata={
                "options": options.model_dump(mode="json"),
                "algorithm": "LSQML",
                "loss": LOSS,
                "initial_object": "flat (ones)" if inp.initial_object is None else "given",
                "probe_refined": options.refine_probe,
                "ptychi_version": getattr(
                    importlib.import_module("ptychi"), "__version__", "unknown"
                ),
                "torchvision": self.torchvision.source,
            },
        )
