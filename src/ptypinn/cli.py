"""The ``ptypinn`` command line: each command parses its options, calls the phase or function
that does the work and prints the summary of the record it returns. What the commands share
(options, trainer flags, error handling through :func:`ptypinn.cli_base.guarded`) is in
:mod:`ptypinn.cli_base`.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ptypinn import __version__
from ptypinn.cli_base import (
    DRY_RUN_HELP,
    RESUME_ITERATIVE_HELP,
    RESUME_TRAINING_HELP,
    ConfigOption,
    DoseFilter,
    EpochsOption,
    PhaseCRoot,
    PhaseDRoot,
    PresetOption,
    ViewFilter,
    design_arguments,
    guarded,
    resolve_design,
    say,
    with_trainer_flags,
)
from ptypinn.cli_tools import convert, reconstruct, score, train
from ptypinn.engines.api import ENGINES
from ptypinn.io.lock import folder_lock
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.study.design import (
    DesignError,
    check_doses,
    check_views,
    with_epochs,
    with_inputs,
    with_iterative,
)
from ptypinn.study.layout import (
    OVERLAP_MANIFEST,
    RECONSTRUCTION_MANIFEST,
    SIMULATION_MANIFEST,
    TRAINING_MANIFEST,
    TRAINING_PREVIEW,
)

app = typer.Typer(
    name="ptypinn",
    help="Physics-informed neural-network ptychography and the dose x overlap study.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
    preset_name: PresetOption = "full",
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


app.command()(train)


@app.command("reconstruct-iterative")
def reconstruct_iterative(
    phase_c_root: PhaseCRoot,
    phase_d_root: PhaseDRoot,
    artifact_root: Annotated[
        Path,
        typer.Option(
            help="Folder for dose_<int>/<view>/<split>/<engine>/reconstruction.{npz,png} "
            "and the manifest.",
            file_okay=False,
        ),
    ],
    dose: DoseFilter = None,
    view: ViewFilter = None,
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


app.command()(convert)
app.command()(score)
app.command()(reconstruct)


@app.command("train-matrix")
@with_trainer_flags
def train_matrix(
    phase_c_root: PhaseCRoot,
    phase_d_root: PhaseDRoot,
    artifact_root: Annotated[Path, typer.Option(help="Where job folders and the manifests go.")],
    dose: DoseFilter = None,
    view: ViewFilter = None,
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
@with_trainer_flags
def study_run(
    preset_name: PresetOption = "smoke",
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
    options: TrainerOptions | None = None,
) -> None:
    """Run phases C to G (simulate, overlap, train, iterative, infer, compare); write the report.

    Trainer flags (--accelerator, --devices ...) apply to training; engines and inference use CPUs.
    """
    from ptypinn.study.runner import report_path, run_study

    design = with_inputs(resolve_design(preset_name, config), object_file, probe_file)
    console = Console(soft_wrap=True)
    start = time.perf_counter()
    if dask_scheduler is None:
        run_study(design, output, resume=resume, console=console, trainer=options)
    else:
        try:
            from distributed import Client
        except ImportError:
            raise DesignError(
                "--dask-scheduler needs Dask: pip install 'dask[distributed]'"
            ) from None
        with Client(dask_scheduler) as client:
            run_study(
                design,
                output,
                resume=resume,
                executor=client.get_executor(),
                console=console,
                trainer=options,
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
