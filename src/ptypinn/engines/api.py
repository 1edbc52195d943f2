"""One reconstruction interface for every method: the :class:`Reconstructor` protocol, options.

A reconstructor turns a :class:`~ptypinn.io.reconstruction.ReconstructionInput` into a
:class:`~ptypinn.io.reconstruction.Reconstruction`. Its implementations:

* ``cdtools``: CDTools (:mod:`ptypinn.engines.cdtools`), options :class:`CDToolsOptions`;
* ``ptychi``: pty-chi LSQML (:mod:`ptypinn.engines.ptychi`), options :class:`PtychiOptions`;
* PtychoPINN: a trained bundle (:class:`ptypinn.pinn.inference.PtychoPINNReconstructor`).

Each engine's options are declared once here (pydantic, frozen, unknown fields refused); the
study design's ``iterative`` block and the command line are built from and validated against
them. :func:`ptypinn.engines.registry.iterative_reconstructor` builds an engine by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Literal, Protocol

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
    """Settings every iterative engine has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


class CDToolsOptions(EngineOptions):
    """CDTools: Adam on the amplitude MSE, with CDTools' plateau learning-rate schedule."""

    learning_rate: float = Field(0.05, gt=0, description="Adam learning rate")


class PtychiOptions(EngineOptions):
    """pty-chi LSQML (least-squares maximum likelihood, PtychoShelves' algorithm)."""

    noise_model: Literal["gaussian", "poisson"] = Field("gaussian", description="LSQML noise model")
    step_size_scaler: float = Field(
        0.9,
        gt=0,
        description="scales LSQML's optimal object and probe steps (beta in PtychoShelves)",
    )
    patch_interpolation: Literal["fourier", "bilinear"] = Field(
        "fourier", description="how LSQML shifts the probe by the sub-pixel part of each position"
    )


ENGINE_OPTIONS: dict[str, type[EngineOptions]] = {
    "cdtools": CDToolsOptions,
    "ptychi": PtychiOptions,
}
ENGINES = tuple(ENGINE_OPTIONS)
EngineName = Literal["cdtools", "ptychi"]  # ENGINES, spelled out for the type checker
ENGINE_LABELS = {"cdtools": "CDTools", "ptychi": "pty-chi LSQML"}
