"""One reconstruction interface for every method: the :class:`Reconstructor` protocol, options.

A reconstructor turns a :class:`~ptypinn.io.reconstruction.ReconstructionInput` into a
:class:`~ptypinn.io.reconstruction.Reconstruction`. Its implementations:

* ``cdtools``: CDTools (:mod:`ptypinn.engines.cdtools`), options :class:`CDToolsOptions`;
* ``ptychi``: pty-chi LSQML (:mod:`ptypinn.engines.ptychi`), options :class:`PtychiOptions`;
* PtychoPINN: a trained bundle (:class:`ptypinn.pinn.inference.PtychoPINNReconstructor`).

Each engine is its options class here (pydantic, frozen, unknown fields refused), which names the
engine, its label in the report, its adapter and the library it needs, registered once with
:func:`engine`; :data:`ENGINE_OPTIONS` is the registry. The study design's ``iterative`` block
and the command line are built from and validated against it
(``tests/engines/test_engines.py`` checks that every name the design accepts is registered).
:func:`ptypinn.engines.registry.iterative_reconstructor` builds an engine by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import ClassVar, Literal, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ptypinn.io.reconstruction import Reconstruction, ReconstructionInput, Snapshot

Advance = Callable[[int], None]  # called with the number of iterations just finished


class Stopwatch:
    """An engine's clock over its iterations, stopped while it copies the object at the
    ``checkpoints`` (:class:`~ptypinn.io.reconstruction.Snapshot`), so the snapshots cost the
    reported time nothing."""

    def __init__(self, checkpoints: Iterable[int]) -> None:
        self.checkpoints = frozenset(checkpoints)
        self.snapshots: list[Snapshot] = []
        self.paused = 0.0
        self.begin = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Seconds of iterations so far."""
        return time.perf_counter() - self.begin - self.paused

    def lap(self, iteration: int, current: Callable[[], np.ndarray]) -> None:
        """After ``iteration`` (0: before the first): keep ``current()`` if it is a
        checkpoint."""
        if iteration in self.checkpoints:
            seconds, stopped = self.seconds, time.perf_counter()
            self.snapshots.append(Snapshot(iteration, seconds, np.array(current())))
            self.paused += time.perf_counter() - stopped


class EngineUnavailable(RuntimeError):
    """The requested reconstruction engine cannot run in this environment."""


class Reconstructor(Protocol):
    """Anything that reconstructs an input: ``method`` names it in files and reports."""

    method: str

    def reconstruct(
        self, inp: ReconstructionInput, advance: Advance | None = None
    ) -> Reconstruction:
        """Reconstruct ``inp``; ``advance`` (if given) is told about finished iterations."""
        ...


class EngineOptions(BaseModel):
    """Settings every iterative engine has; a subclass is one engine: its ``name``, its ``label``
    in the report, its ``adapter`` (``module:Reconstructor class``, imported only when the
    engine runs) and the ``library`` it needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    label: ClassVar[str]
    adapter: ClassVar[str]
    library: ClassVar[str]

    iterations: int = Field(100, ge=1, description="iterations (epochs over all patterns)")
    batch_size: int = Field(16, ge=1, description="patterns per update")
    seed: int = Field(0, description="minibatch order (a CPU run repeats exactly)")
    refine_probe: bool = Field(False, description="refine the probe (else it stays as given)")
    threads: int = Field(
        1,
        ge=1,
        description="torch intra-op threads; the engines work on many small arrays, "
        "where more threads cost more in synchronisation than they gain",
    )
    checkpoints: tuple[int, ...] = Field(
        (),
        description="iterations after which the object is kept (outside the clock) for a "
        "time-to-quality curve; 0 keeps the starting object",
    )


ENGINE_OPTIONS: dict[str, type[EngineOptions]] = {}
Options = TypeVar("Options", bound=type[EngineOptions])


def engine(options: Options) -> Options:
    """Register an engine (its options class) under its name."""
    if options.name in ENGINE_OPTIONS:
        raise ValueError(f"engine {options.name!r} is registered twice")
    ENGINE_OPTIONS[options.name] = options
    return options


@engine
class CDToolsOptions(EngineOptions):
    """CDTools: Adam on the amplitude MSE, with CDTools' plateau learning-rate schedule."""

    name = "cdtools"
    label = "CDTools"
    adapter = "ptypinn.engines.cdtools:CDToolsReconstructor"
    library = "CDTools (PyPI package 'cdtools-py')"

    learning_rate: float = Field(0.05, gt=0, description="Adam learning rate")


@engine
class PtychiOptions(EngineOptions):
    """pty-chi LSQML (least-squares maximum likelihood, PtychoShelves' algorithm)."""

    name = "ptychi"
    label = "pty-chi LSQML"
    adapter = "ptypinn.engines.ptychi:PtychiReconstructor"
    library = "pty-chi (PyPI package 'ptychi')"

    noise_model: Literal["gaussian", "poisson"] = Field("gaussian", description="LSQML noise model")
    step_size_scaler: float = Field(
        0.9,
        gt=0,
        description="scales LSQML's optimal object and probe steps (beta in PtychoShelves)",
    )
    patch_interpolation: Literal["fourier", "bilinear"] = Field(
        "fourier", description="how LSQML shifts the probe by the sub-pixel part of each position"
    )


ENGINES = tuple(ENGINE_OPTIONS)
EngineName = Literal["cdtools", "ptychi"]  # ENGINES, spelled out for the design's validation
ENGINE_LABELS = {name: options.label for name, options in ENGINE_OPTIONS.items()}
