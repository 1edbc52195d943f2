"""The ``ptypinn`` command line.

Every command runs through :func:`guarded`, the one place that turns failures into exit
statuses: a user mistake (bad design, dataset, file, option, or an output the system refuses to
write) is one message and status 2; a numerical failure (NaN) is one message and status 1;
Ctrl-C is one message and status 130; anything else is an internal error and keeps its
traceback. Text that comes from users (paths, names, values) is never read as Rich markup.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from ptypinn import __version__
from ptypinn.engines.api import ENGINES, EngineUnavailable
from ptypinn.io.artifacts import OutputError
from ptypinn.io.dataset import DatasetError, PtychoDataset
from ptypinn.io.formats import FileFormat, convert_file
from ptypinn.io.hdf5 import FormatError
from ptypinn.io.limits import TooLargeError
from ptypinn.io.lock import folder_lock
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
from ptypinn.study.design import (
    DesignError,
    StudyDesign,
    check_doses,
    load_design,
    preset,
    with_inputs,
    with_iterative,
    with_metrics,
)
from ptypinn.study.layout import (
    OVERLAP_MANIFEST,
    RECONSTRUCTION_MANIFEST,
    SIMULATION_MANIFEST,
    TRAINING_MANIFEST,
    TRAINING_PREVIEW,
)
from ptypinn.study.runner import StudyStateError

app = typer.Typer(
    name="ptypinn",
    help="Physics-informed neural-network ptychography and the dose x overlap study.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ptypinn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """Physics-informed neural-network ptychography and the dose x overlap study."""


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


def with_epochs(design: StudyDesign, epochs: int | None) -> StudyDesign:
    if epochs is None:
        return design
    return design.model_copy(
        update={"training": design.training.model_copy(update={"epochs": epochs})}
    )


def check_views(design: StudyDesign, views: list[str] | None) -> None:
    known = ["baseline", *(v.name for v in design.views)]
    unknown = [v for v in views or [] if v not in known]
    if unknown:
        raise DesignError(
            f"--view {unknown[0]!r} is not a view of design {design.name!r}; choose from {known}"
        )


def design_arguments(preset_name: str, config: Path | None) -> list[str]:
    return ["--config", str(config)] if config is not None else ["--preset", preset_name]


@app.command()
def simulate(
    preset_name: PresetOption = "full",
    config: ConfigOption = None,
    output_root: Annotated[
        Path, typer.Option(help="Folder for dose_<int>/{train,test}.npz and the manifest.")
    ] = Path("ptypinn-sim"),
    dose: Annotated[
        list[float] | None,
        typer.Option(
            help="Dose (photons per pattern) to simulate; repeat for several. "
            "Default: the design's doses."
        ),
    ] = None,
    object_file: Annotated[
        Path | None,
        typer.Option(
            "--object",
            help="NPZ with objectGuess (and optionally probeGuess) to use instead of the "
            "embedded default.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Phase C: simulate diffraction at each dose, split train/test along y, write NPZ files and a manifest."""  # noqa: E501 - Typer prints this summary with its line breaks in `ptypinn --help`
    from ptypinn.study.simulate import run_simulation, source_from_npz

    design = resolve_design(preset_name, config)
    if dose:
        try:
            check_doses(dose, "--dose")
        except ValueError as error:
            raise DesignError(str(error)) from None
    source = source_from_npz(object_file, design) if object_file is not None else None
    manifest = run_simulation(design, output_root, source=source, doses=dose or None)
    say(manifest.summary(output_root))
    say(f"manifest: {output_root / SIMULATION_MANIFEST}")


@app.command()
def overlap(
    phase_c_root: Annotated[
        Path,
        typer.Option(
            help="Phase C folder (simulation_manifest.json, dose_<int>/{train,test}.npz).",
            file_okay=False,
        ),
    ],
    output_root: Annotated[
        Path,
        typer.Option(
            help="Folder for dose_<int>/<view>/{train,test}.npz, the manifest and metrics.json.",
            file_okay=False,
        ),
    ],
    preset_name: Annotated[str, typer.Option("--preset", help=PRESET_HELP)] = "full",
    config: ConfigOption = None,
    dose: Annotated[
        list[float] | None,
        typer.Option(help="Dose to process; repeat for several. Default: every dose of phase C."),
    ] = None,
    view: Annotated[
        list[str] | None,
        typer.Option(help="View to form; repeat for several. Default: every view of the design."),
    ] = None,
) -> None:
    """Phase D: thin each dose's scan to every overlap view's minimum spacing, write the subsets and measure their overlap.

    Each view's spacing follows its rule (disc_overlap: the probe footprints overlap by the
    target; patch_linear: (1 - f) N). Reports the nearest-neighbour overlap (what the rule
    targets) and the mean over the K nearest neighbours, train/test.
    Exits with status 1, after writing everything else, when a view keeps too few positions to be formed.
    """  # noqa: E501 - Typer prints this help with its line breaks (`ptypinn overlap --help`)
    from ptypinn.study.overlap import run_overlap

    design = resolve_design(preset_name, config)
    manifest = run_overlap(
        design, phase_c_root, output_root, doses=dose or None, views=view or None
    )
    say(manifest.summary())
    say(f"manifest: {output_root / OVERLAP_MANIFEST}")
    if manifest.not_formed:
        for item in manifest.not_formed:
            where = f"dose {item.dose:g} view {item.view!r} {item.split}"
            say(f"not formed: {where}: {item.reason}", err=True)
        raise typer.Exit(code=1)


@app.command()
@with_trainer_flags
def train(
    train_file: Annotated[
        Path, typer.Option("--train", help="Training NPZ (canonical format).", dir_okay=False)
    ],
    output: Annotated[Path, typer.Option(help="Job folder: model.pt, logs, checkpoints.")],
    gridsize: Annotated[
        int, typer.Option(help="Patterns per group side: C = gridsize^2.", min=1)
    ] = 1,
    nphotons: Annotated[
        float | None, typer.Option(help="Photons per pattern (default: the dataset metadata).")
    ] = None,
    supervised: Annotated[
        bool,
        typer.Option(
            help="Train the supervised baseline (MAE against objectGuess patches) "
            "instead of the PINN."
        ),
    ] = False,
    preset_name: PresetOption = "full",
    config: ConfigOption = None,
    max_epochs: EpochsOption = None,
    options: TrainerOptions | None = None,
) -> None:
    """Train PtychoPINN (or the supervised baseline) on one dataset and write a model bundle."""
    from ptypinn.io.dataset import load_dataset
    from ptypinn.pinn.train import JobSpec, train_model

    design = with_epochs(resolve_design(preset_name, config), max_epochs)
    training = (
        design.training.model_copy(update={"model": "supervised"})
        if supervised
        else design.training
    )
    spec = JobSpec(
        train_file, gridsize, design.neighbor_count, design.seeds.grouping, training, nphotons
    )
    assert options is not None  # with_trainer_flags always passes it
    result = train_model(spec, load_dataset(train_file), output, options)
    say(
        f"final loss {result.final_loss:.6g} after {result.epochs} epochs "
        f"({result.wall_time_s:.1f} s)"
    )
    say(f"bundle: {result.bundle} (sha256 {result.sha256})")


@app.command("reconstruct-iterative")
def reconstruct_iterative(
    phase_c_root: Annotated[
        Path, typer.Option(help="Phase C folder (dose_<int>/{train,test}.npz).", file_okay=False)
    ],
    phase_d_root: Annotated[
        Path,
        typer.Option(help="Phase D folder (dose_<int>/<view>/{train,test}.npz).", file_okay=False),
    ],
    artifact_root: Annotated[
        Path,
        typer.Option(
            help="Folder for dose_<int>/<view>/<split>/<engine>/reconstruction.{npz,png} "
            "and the manifest.",
            file_okay=False,
        ),
    ],
    dose: Annotated[
        list[float] | None,
        typer.Option(
            help="Dose to reconstruct; repeat for several. Default: every dose of phase C."
        ),
    ] = None,
    view: Annotated[
        list[str] | None,
        typer.Option(help="View (baseline, dense, sparse); repeat for several. Default: all."),
    ] = None,
    split: Annotated[
        list[str] | None,
        typer.Option(help="Split (train, test); repeat for several. Default: both."),
    ] = None,
    engine: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Engine ({', '.join(ENGINES)}); repeat for several. "
            "Default: the design's iterative.engines."
        ),
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(
            help="Iterations (epochs over all patterns) per job, for every engine. "
            "Default: the design's iterative.<engine>.iterations."
        ),
    ] = None,
    preset_name: PresetOption = "full",
    config: ConfigOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the jobs and write nothing.")
    ] = False,
    allow_missing_phase_d: Annotated[
        bool,
        typer.Option(
            "--allow-missing-phase-d", help="Skip (and record) overlap views with no phase D data."
        ),
    ] = False,
    resume: Annotated[bool, typer.Option(help=RESUME_ITERATIVE_HELP)] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Jobs at once, each in its own process. Default: the CPU count over the "
            "threads each engine uses.",
        ),
    ] = None,
) -> None:
    """Phase F: iterative reconstruction of every dose x view x split dataset with every engine.

    An engine that cannot run here fails its jobs (exit status 1) and the other engines still run.
    """
    from ptypinn.study.iterative import run_iterative_matrix

    design = with_iterative(resolve_design(preset_name, config), None, iterations)
    engines = with_iterative(design, engine).iterative.engines if engine else None
    lock = (
        contextlib.nullcontext(None)  # a dry run writes nothing, not even a lock
        if dry_run
        else folder_lock(artifact_root, "ptypinn reconstruct-iterative")
    )
    with lock as note:
        if note:
            say(f"note: {note}")
        manifest = run_iterative_matrix(
            design,
            phase_c_root,
            phase_d_root,
            artifact_root,
            doses=dose,
            views=view,
            splits=split,
            engines=engines,
            workers=workers,
            dry_run=dry_run,
            allow_missing_phase_d=allow_missing_phase_d,
            resume=resume,
        )
    say(manifest.summary())
    if not dry_run:
        say(f"manifest: {artifact_root / RECONSTRUCTION_MANIFEST}")
    if manifest.failed_count:
        say(f"{manifest.failed_count} of {len(manifest.jobs)} jobs failed")
        raise typer.Exit(1)


FORMAT_HELP = (
    "Format of {}: npz, cxi or product (ptychodus HDF5). "
    "Default: from the extension (.npz, .cxi, .h5/.hdf5)."
)


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="File to read.", dir_okay=False)],
    target: Annotated[
        Path, typer.Argument(help="File to write (replaced atomically).", dir_okay=False)
    ],
    from_format: Annotated[
        FileFormat | None, typer.Option("--from", help=FORMAT_HELP.format("SOURCE"))
    ] = None,
    to_format: Annotated[
        FileFormat | None, typer.Option("--to", help=FORMAT_HELP.format("TARGET"))
    ] = None,
) -> None:
    """Convert between canonical/reconstruction NPZ, CXI 1.6 and ptychodus product HDF5 files."""
    content = convert_file(source, target, from_format, to_format)
    what = (
        f"dataset, {content.count} patterns"
        if isinstance(content, PtychoDataset)
        else f"reconstruction, {len(content.positions_m)} positions"
    )
    say(f"{source} -> {target} ({what})")


@app.command()
def score(
    reconstruction: Annotated[
        Path,
        typer.Argument(
            help="Reconstruction to score: our reconstruction NPZ or a ptychodus product (.h5).",
            dir_okay=False,
        ),
    ],
    truth: Annotated[
        Path,
        typer.Option(
            help="Dataset with the scan and the true object (objectGuess): canonical NPZ or CXI.",
            dir_okay=False,
        ),
    ],
    from_format: Annotated[
        FileFormat | None, typer.Option("--from", help=FORMAT_HELP.format("RECONSTRUCTION"))
    ] = None,
    max_shift: Annotated[
        float | None,
        typer.Option(
            help="Bound of the alignment shift, px per axis, at most 16 (default: the "
            "design's metrics.max_shift_px).",
            min=0,
        ),
    ] = None,
    preset_name: PresetOption = "full",
    config: ConfigOption = None,
) -> None:
    """Score a reconstruction against ground truth as phase G does; print JSON with every score,
    the alignment applied and the region used (an unmeasurable score is null, with its reason)."""
    from ptypinn.study.scoring import score_file

    design = resolve_design(preset_name, config)
    if max_shift is not None:
        design = with_metrics(design, max_shift_px=max_shift)
    metrics = design.metrics
    result = score_file(reconstruction, truth, metrics, from_format)
    typer.echo(json.dumps(result, indent=2, allow_nan=False))


@app.command()
def reconstruct(
    bundle: Annotated[
        Path,
        typer.Option(help="Model bundle (model.pt) written by `ptypinn train`.", dir_okay=False),
    ],
    data: Annotated[
        Path,
        typer.Option(
            help="NPZ whose diffraction to reconstruct (usually the test split).", dir_okay=False
        ),
    ],
    output: Annotated[
        Path, typer.Option(help="Folder for reconstruction.npz and reconstruction.png.")
    ],
    refine: Annotated[
        int,
        typer.Option(
            help="Test-time refinement: optimiser steps on this data's diffraction "
            "(physics loss, no ground truth) first.",
            min=0,
        ),
    ] = 0,
) -> None:
    """Reconstruct a dataset with a trained bundle: predict every patch and stitch them."""
    from dataclasses import replace

    from ptypinn.io.dataset import load_dataset
    from ptypinn.io.reconstruction import ReconstructionInput
    from ptypinn.pinn.inference import PtychoPINNOptions, PtychoPINNReconstructor
    from ptypinn.study.outputs import save_reconstruction

    dataset = load_dataset(data)
    inp = ReconstructionInput.from_dataset(dataset)
    reconstructor = PtychoPINNReconstructor.from_bundle(
        bundle, PtychoPINNOptions(refine_steps=refine)
    )
    rec = reconstructor.reconstruct(inp)
    rec = replace(rec, metadata={**rec.metadata, "data": str(data)})
    npz, png = save_reconstruction(
        output, rec, dataset.obj, label="PtychoPINN + refine" if refine else "PtychoPINN"
    )
    rate = dataset.count / rec.wall_time_s
    timing = f"{dataset.count} patterns in {rec.wall_time_s:.2f} s ({rate:.0f} patterns/s)"
    if refine:
        timing += (
            f", including {refine} refinement steps "
            f"(loss {rec.losses[0]:.6g} -> {rec.losses[-1]:.6g})"
        )
    say(timing)
    say(f"reconstruction: {npz}\nimage: {png}")


@app.command("train-matrix")
@with_trainer_flags
def train_matrix(
    phase_c_root: Annotated[Path, typer.Option(help="Phase C root (dose_<int>/{train,test}.npz).")],
    phase_d_root: Annotated[
        Path, typer.Option(help="Phase D root (dose_<int>/<view>/{train,test}.npz).")
    ],
    artifact_root: Annotated[Path, typer.Option(help="Where job folders and the manifests go.")],
    dose: Annotated[
        list[float] | None, typer.Option(help="Only this dose; repeat for several.")
    ] = None,
    view: Annotated[
        list[str] | None,
        typer.Option(help="Only this view (baseline, dense, sparse); repeat for several."),
    ] = None,
    gridsize: Annotated[
        list[int] | None, typer.Option(help="Only this gridsize; repeat for several.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help=DRY_RUN_HELP)] = False,
    allow_missing_phase_d: Annotated[
        bool, typer.Option(help="Skip (and record) overlap views whose data is missing.")
    ] = False,
    resume: Annotated[bool, typer.Option(help=RESUME_TRAINING_HELP)] = False,
    preset_name: PresetOption = "full",
    config: ConfigOption = None,
    max_epochs: EpochsOption = None,
    options: TrainerOptions | None = None,
) -> None:
    """Phase E: train every (dose, view) job of the study matrix and write training_manifest.json."""  # noqa: E501 - Typer prints this summary with its line breaks in `ptypinn --help`
    from ptypinn.study.training import run_training_matrix

    design = with_epochs(resolve_design(preset_name, config), max_epochs)
    check_views(design, view)
    assert options is not None  # with_trainer_flags always passes it
    with folder_lock(artifact_root, "ptypinn train-matrix") as note:
        if note:
            say(f"note: {note}")
        manifest = run_training_matrix(
            design,
            phase_c_root,
            phase_d_root,
            artifact_root,
            doses=dose,
            views=view,
            gridsizes=gridsize,
            allow_missing_phase_d=allow_missing_phase_d,
            dry_run=dry_run,
            resume=resume,
            options=options,
            design_args=design_arguments(preset_name, config),
        )
    say(manifest.summary())
    if dry_run:
        say(f"preview: {artifact_root / TRAINING_PREVIEW}")
    else:
        say(f"manifest: {artifact_root / TRAINING_MANIFEST}")
    if manifest.failed_count:
        raise typer.Exit(1)


study_app = typer.Typer(help="The whole dose x overlap study, end to end.", no_args_is_help=True)
app.add_typer(study_app, name="study")


@study_app.command("run")
def study_run(
    preset_name: Annotated[str, typer.Option("--preset", help=PRESET_HELP)] = "smoke",
    config: ConfigOption = None,
    output: Annotated[
        Path, typer.Option(help="Study folder: phase_c ... phase_g, design.yaml, study_state.json.")
    ] = Path("study-output"),
    resume: Annotated[
        bool,
        typer.Option(
            help="Skip steps whose inputs and design are unchanged since they last finished."
        ),
    ] = False,
    dask_scheduler: Annotated[
        str | None,
        typer.Option(
            help="Address of a running Dask scheduler (tcp://host:8786) to send training jobs to."
        ),
    ] = None,
    object_file: Annotated[
        Path | None,
        typer.Option(
            "--object",
            help="NPZ whose objectGuess (complex, each side at least 2N) replaces the embedded "
            "object (design field simulation.object_file).",
            dir_okay=False,
        ),
    ] = None,
    probe_file: Annotated[
        Path | None,
        typer.Option(
            "--probe",
            help="NPZ whose probeGuess (complex N x N) is the probe (design: simulation.probe "
            "kind file).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Run phases C to G (simulate, overlap, train, iterative, compare) and write the report."""
    from ptypinn.study.runner import report_path, run_study

    design = with_inputs(resolve_design(preset_name, config), object_file, probe_file)
    console = Console(soft_wrap=True)
    start = time.perf_counter()
    if dask_scheduler is None:
        run_study(design, output, resume=resume, console=console)
    else:
        try:
            from distributed import Client
        except ImportError:
            raise DesignError(
                "--dask-scheduler needs Dask: pip install 'dask[distributed]'"
            ) from None
        with Client(dask_scheduler) as client:
            run_study(
                design, output, resume=resume, executor=client.get_executor(), console=console
            )
    say(f"study finished in {time.perf_counter() - start:.0f} s; report: {report_path(output)}")


# Every command, including those added later, answers through guarded().
for _commands in (app, study_app):
    for _info in _commands.registered_commands:
        assert _info.callback is not None  # every command is registered with its function
        _info.callback = guarded(_info.callback)


# Third-party deprecation notices a user cannot act on (Lightning calling a deprecated torch
# API, CDTools a deprecated Matplotlib one): not shown among the progress lines. The same list
# is in pytest's configuration (pyproject.toml); our own warnings are never filtered.
QUIET_MODULES = (
    r"(lightning|lightning_fabric|pytorch_lightning|torchmetrics|cdtools|ptychi)(\..*)?\Z"
)


def quiet_third_party_warnings() -> None:
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=QUIET_MODULES)


def main() -> None:
    quiet_third_party_warnings()
    app()
