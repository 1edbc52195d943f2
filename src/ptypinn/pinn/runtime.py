"""Where and how training runs — hardware, determinism, logging — kept apart from the science
(the design) and from Lightning itself, so the command line can describe it without importing
Lightning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TrainerOptions:
    """Where and how Lightning runs: hardware, determinism, logging. Not part of the science."""

    accelerator: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    deterministic: bool = True
    precision: Literal["32-true", "bf16-mixed"] = "32-true"
    num_workers: int = 0
    logger: Literal["csv", "tensorboard", "none"] = "csv"
    checkpoints: bool = True
    progress: bool = True
