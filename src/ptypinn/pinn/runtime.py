"""Where and how training runs — hardware, determinism, logging — kept apart from the science
(the design) and from Lightning itself, so the command line can describe it without importing
Lightning."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, get_args

ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
Precision = Literal["auto", "32-true", "bf16-mixed"]
LoggerName = Literal["csv", "tensorboard", "none"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
LOGGERS: tuple[LoggerName, ...] = get_args(LoggerName)


class TrainerError(ValueError):
    """Trainer options this machine cannot honour: an unknown accelerator, devices it lacks."""


@dataclass(frozen=True)
class TrainerOptions:
    """Where and how Lightning runs: hardware, determinism, logging. Not part of the science."""

    accelerator: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    deterministic: bool = True
    precision: Precision = "auto"
    num_workers: int = 0
    logger: LoggerName = "csv"
    checkpoints: bool = True
    progress: bool = True


def native_bf16(accelerator: str) -> bool:
    """Whether the hardware ``accelerator`` names computes bf16 natively: a CUDA GPU that supports
    it, or a CPU with AVX512-BF16 or AMX (elsewhere bf16 is emulated and slower than fp32)."""
    import torch

    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if accelerator == "mps":
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so looked up
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch threads (``None``: as it is), then restore the count:
    every method (CDTools, pty-chi, PtychoPINN) runs its clocked work this way."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count or previous)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolved_precision(options: TrainerOptions) -> Literal["32-true", "bf16-mixed"]:
    """``options.precision``, with ``auto`` made concrete: bf16 autocast where the hardware
    computes bf16 natively (1.4-1.8x faster training here, same learning curve), else fp32."""
    if options.precision != "auto":
        return options.precision
    return "bf16-mixed" if native_bf16(options.accelerator) else "32-true"


def parse_devices(text: str) -> int | str:
    """``--devices`` as Lightning takes it: a count (``2``), indices (``0,1``) or ``auto``."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text in ("auto", "-1") or re.fullmatch(r"\d+(,\d+)*,?", text):
        return text
    raise TrainerError(
        f"--devices must be a count, device indices such as '0,1', or 'auto'; got {text!r}"
    )


def check_available(options: TrainerOptions) -> None:
    """Refuse, before any work, an accelerator this machine does not have."""
    if options.accelerator not in ACCELERATORS:
        raise TrainerError(
            f"--accelerator must be one of {', '.join(ACCELERATORS)}; got {options.accelerator!r}"
        )
    import torch

    if options.accelerator in ("gpu", "cuda"):
        count = torch.cuda.device_count()
        if count == 0:
            raise TrainerError(
                f"--accelerator {options.accelerator}: this machine has no CUDA GPU that torch "
                f"{torch.__version__} can use; use --accelerator cpu"
            )
        if isinstance(options.devices, int) and options.devices > count:
            raise TrainerError(f"--devices {options.devices}: this machine has {count} CUDA GPU(s)")
    if options.accelerator == "mps" and not torch.backends.mps.is_available():
        raise TrainerError(
            "--accelerator mps: Apple's Metal backend is not available here; use --accelerator cpu"
        )
