"""What every command of the ``ptypinn`` command line shares: how it prints and how it fails
(:func:`guarded`), the options several commands take (design, trainer flags, phase folders,
filters) and the design they resolve to.

A command runs through :func:`guarded`, the one place that turns failures into exit statuses: a
user mistake (bad design, dataset, file, option, or an output the system refuses to write) is one
message and status 2; a numerical failure (NaN) is one message and status 1; Ctrl-C is one message
and status 130; anything else is an internal error and keeps its traceback. Text that comes from
users (paths, names, values) is never read as Rich markup.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from ptypinn.engines.api import EngineUnavailable
from ptypinn.io.artifacts import OutputError
from ptypinn.io.dataset import DatasetError
from ptypinn.io.hdf5 import FormatError
from ptypinn.io.limits import TooLargeError
from ptypinn.physics.finite import NonFiniteError
from ptypinn.physics.grouping import GroupingError
from ptypinn.pinn.runtime import (
    LOGGERS,
    PRECISIONS,
    TrainerError,
    TrainerOptions,
    check_available,
    parse_devices,
)
from ptypinn.study.design import DesignError, StudyDesign, load_design, preset
from ptypinn.study.runner import StudyStateError

# Mistakes a user can make (bad design, dataset, file or option, missing engine, an output the
# system refuses): one clear message, exit status 2, no traceback.
USER_ERRORS = (
    DesignError,
    DatasetError,
    GroupingError,
    FormatError,
    EngineUnavailable,
    TrainerError,
    StudyStateError,
    OutputError,
    TooLargeError,
    OSError,
)
INTERRUPTED = (
    "interrupted; finished work is kept "
    "(`study run`, `train-matrix` and `reconstruct-iterative` continue with --resume)"
)

PRESET_HELP = "Design preset: 'full' (the study as stated) or 'smoke' (N=64, minutes on CPU)."
DRY_RUN_HELP = "Write each job's configuration and command to training_preview.json; train none."
RESUME_TRAINING_HELP = "Keep jobs whose record (same data and settings) and bundle still match."
RESUME_ITERATIVE_HELP = "Keep jobs whose record (same engine, settings, data) and files match."
CONFIG_HELP = "YAML design file listing only what it changes: its fields replace --preset's."
ConfigOption = Annotated[Path | None, typer.Option(help=CONFIG_HELP, dir_okay=False)]
PresetOption = Annotated[str, typer.Option("--preset", help=PRESET_HELP)]

# Trainer flags shared by `train` and `train-matrix` (hardware and logging, not science).
AcceleratorOption = Annotated[
    str, typer.Option(help="Lightning accelerator: cpu, gpu, mps or auto.")
]
DevicesOption = Annotated[
    str, typer.Option(help="Devices per node: a count, a list such as '0,1', or auto.")
]
StrategyOption = Annotated[
    str, typer.Option(help="Lightning strategy, e.g. auto or ddp (multi-GPU / multi-node).")
]
NodesOption = Annotated[int, typer.Option(help="Number of nodes for multi-node DDP.", min=1)]
DeterministicOption = Annotated[
    bool, typer.Option(help="Deterministic algorithms (bit-reproducible on CPU).")
]
WorkersOption = Annotated[int, typer.Option(help="DataLoader worker processes.", min=0)]
LoggerOption = Annotated[str, typer.Option(help="Training log format: csv, tensorboard or none.")]
PrecisionOption = Annotated[
    str,
    typer.Option(
        help="Arithmetic: auto (bf16-mixed where the hardware computes bf16 natively, else "
        "32-true), 32-true or bf16-mixed."
    ),
]
EpochsOption = Annotated[
    int | None, typer.Option(help="Epochs (default: the design's training.epochs).", min=1)
]


PhaseCRoot = Annotated[
    Path, typer.Option(help="Phase C folder (dose_<int>/{train,test}.npz).", file_okay=False)
]
PhaseDRoot = Annotated[
    Path,
    typer.Option(help="Phase D folder (dose_<int>/<view>/{train,test}.npz).", file_okay=False),
]
DoseFilter = Annotated[list[float] | None, typer.Option(help="Only this dose; repeat for several.")]
ViewFilter = Annotated[
    list[str] | None,
    typer.Option(help="Only this view (baseline or a view of the design); repeat for several."),
]


def say(text: str, err: bool = False) -> None:
    """Print plain text: paths and names are never read as markup."""
    typer.echo(text, err=err)


def fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True, soft_wrap=True, highlight=False).print(
        Text.assemble(("error: ", "bold red"), message)
    )
    return typer.Exit(code)


def _os_message(error: OSError) -> str:
    names = " -> ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
    return f"{names}: {error.strerror}" if names and error.strerror else str(error)


def guarded(command: Callable) -> Callable:
    """Run a command; user errors, numerical failures and Ctrl-C become a message and a status."""

    @functools.wraps(command)
    def wrapper(*args: object, **kwargs: object) -> None:
        try:
            command(*args, **kwargs)
        except KeyboardInterrupt:
            raise fail(INTERRUPTED, 130) from None
        except NonFiniteError as error:
            raise fail(str(error), 1) from None
        except USER_ERRORS as error:
            raise fail(
                _os_message(error) if isinstance(error, OSError) else str(error), 2
            ) from None

    return wrapper


def resolve_design(preset_name: str, config: Path | None) -> StudyDesign:
    """The preset, with the fields of the design file (if any) laid over it."""
    return load_design(config, base=preset_name) if config is not None else preset(preset_name)


# The flags' defaults are TrainerOptions' own: the options are declared once, in pinn/runtime.py.
_TRAINER_DEFAULTS = TrainerOptions()
TRAINER_FLAGS = (
    ("accelerator", AcceleratorOption, _TRAINER_DEFAULTS.accelerator),
    ("devices", DevicesOption, str(_TRAINER_DEFAULTS.devices)),
    ("strategy", StrategyOption, _TRAINER_DEFAULTS.strategy),
    ("num_nodes", NodesOption, _TRAINER_DEFAULTS.num_nodes),
    ("deterministic", DeterministicOption, _TRAINER_DEFAULTS.deterministic),
    ("num_workers", WorkersOption, _TRAINER_DEFAULTS.num_workers),
    ("logger", LoggerOption, _TRAINER_DEFAULTS.logger),
    ("precision", PrecisionOption, _TRAINER_DEFAULTS.precision),
)


def trainer_options(
    accelerator: str,
    devices: str,
    strategy: str,
    num_nodes: int,
    deterministic: bool,
    num_workers: int,
    logger: str,
    precision: str,
) -> TrainerOptions:
    if logger not in LOGGERS:
        raise DesignError(f"--logger must be csv, tensorboard or none, got {logger!r}")
    if precision not in PRECISIONS:
        raise DesignError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    options = TrainerOptions(
        accelerator=accelerator,
        devices=parse_devices(devices),
        strategy=strategy,
        num_nodes=num_nodes,
        deterministic=deterministic,
        num_workers=num_workers,
        logger=logger,
        precision=precision,
    )
    check_available(options)
    return options


def with_trainer_flags(command: Callable) -> Callable:
    """Give a command the shared trainer flags (--accelerator ... --logger) in place of its
    ``options`` parameter, which then receives them as one :class:`TrainerOptions`."""
    signature = inspect.signature(
        command, eval_str=True
    )  # Typer reads annotations from the signature
    kept = [p for p in signature.parameters.values() if p.name != "options"]
    flags = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
        )
        for name, annotation, default in TRAINER_FLAGS
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: object) -> None:
        values: dict[str, Any] = {name: kwargs.pop(name) for name, _, _ in TRAINER_FLAGS}
        command(**kwargs, options=trainer_options(**values))

    # Typer reads the signature; mypy does not know functions take new attributes
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*kept, *flags]
    )
    return wrapper


def design_arguments(preset_name: str, config: Path | None) -> list[str]:
    return ["--config", str(config)] if config is not None else ["--preset", preset_name]
