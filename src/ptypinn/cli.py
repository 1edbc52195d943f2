"""The ``ptypinn`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from . import __version__
from .data import DatasetError
from .design import DesignError, StudyDesign, load_design, preset
from .iterative import DEFAULT_ENGINE, DEFAULT_ITERATIONS, ENGINES, EngineUnavailable

app = typer.Typer(
    name="ptypinn",
    help="Physics-informed neural-network ptychography and the dose x overlap study.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Mistakes a user can make (bad design, bad dataset): reported as one clear message, no traceback.
USER_ERRORS = (DesignError, DatasetError, EngineUnavailable)

PRESET_HELP = "Design preset: 'full' (the study as stated) or 'smoke' (N=64, minutes on CPU)."
ConfigOption = Annotated[Optional[Path], typer.Option(help="YAML design file; overrides --preset.", dir_okay=False)]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ptypinn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version)] = False,
) -> None:
    """Physics-informed neural-network ptychography and the dose x overlap study."""


def resolve_design(preset_name: str, config: Path | None) -> StudyDesign:
    return load_design(config) if config is not None else preset(preset_name)


@app.command()
def simulate(
    preset_name: Annotated[str, typer.Option("--preset", help=PRESET_HELP)] = "full",
    config: ConfigOption = None,
    output_root: Annotated[Path, typer.Option(help="Folder for dose_<int>/{train,test}.npz and the manifest.")] = Path("ptypinn-sim"),
    dose: Annotated[Optional[list[float]], typer.Option(help="Dose (photons per pattern) to simulate; repeat for several. Default: the design's doses.")] = None,
    object_file: Annotated[Optional[Path], typer.Option("--object", help="NPZ with objectGuess (and optionally probeGuess) to use instead of the embedded default.", dir_okay=False)] = None,
) -> None:
    """Phase C: simulate diffraction at each dose, split train/test along y, write NPZ files and a manifest."""
    from .simulate import run_simulation, source_from_npz

    design = resolve_design(preset_name, config)
    if dose:
        bad = [d for d in dose if not d > 0]
        if bad:
            raise DesignError(f"--dose must be positive, got {bad}")
    source = source_from_npz(object_file, design) if object_file is not None else None
    manifest = run_simulation(design, output_root, source=source, doses=dose or None)
    console = Console()
    for entry in manifest["doses"]:
        counts = entry["counts"]
        console.print(f"dose {entry['dose']:g}: {counts['train']} train / {counts['test']} test patterns -> {output_root / entry['folder']}")
    console.print(f"manifest: {output_root / 'simulation_manifest.json'}")


@app.command("reconstruct-iterative")
def reconstruct_iterative(
    phase_c_root: Annotated[Path, typer.Option(help="Phase C folder (dose_<int>/{train,test}.npz).", file_okay=False)],
    phase_d_root: Annotated[Path, typer.Option(help="Phase D folder (dose_<int>/<view>/{train,test}.npz).", file_okay=False)],
    artifact_root: Annotated[Path, typer.Option(help="Folder for dose_<int>/<view>/<split>/reconstruction.{npz,png} and the manifest.", file_okay=False)],
    dose: Annotated[Optional[list[float]], typer.Option(help="Dose to reconstruct; repeat for several. Default: every dose of phase C.")] = None,
    view: Annotated[Optional[list[str]], typer.Option(help="View (baseline, dense, sparse); repeat for several. Default: all.")] = None,
    split: Annotated[Optional[list[str]], typer.Option(help="Split (train, test); repeat for several. Default: both.")] = None,
    engine: Annotated[str, typer.Option(help=f"Reconstruction engine: {' or '.join(ENGINES)}.")] = DEFAULT_ENGINE,
    iterations: Annotated[int, typer.Option(help="Iterations (epochs over all patterns) per job.")] = DEFAULT_ITERATIONS,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the jobs and write nothing.")] = False,
    allow_missing_phase_d: Annotated[bool, typer.Option("--allow-missing-phase-d", help="Skip (and record) overlap views with no phase D data.")] = False,
) -> None:
    """Phase F: classical iterative reconstruction of every dose x view x split dataset."""
    from .iterative_matrix import run_iterative_matrix

    manifest = run_iterative_matrix(
        phase_c_root,
        phase_d_root,
        artifact_root,
        doses=dose,
        views=view,
        splits=split,
        engine=engine,
        iterations=iterations,
        dry_run=dry_run,
        allow_missing_phase_d=allow_missing_phase_d,
    )
    console = Console()
    for job in manifest["jobs"]:
        detail = job["error"] or (f"final loss {job['final_loss']:.3g}, {job['wall_time_s']:.1f} s" if job["status"] == "ok" else job.get("output", ""))
        console.print(f"dose {job['dose']:g} {job['view']}/{job['split']}: {job['status']} {detail}", highlight=False)
    for skip in manifest["skipped_views"]:
        console.print(f"skipped dose {skip['dose']:g} {skip['view']}: {skip['reason']}", highlight=False)
    if not dry_run:
        console.print(f"manifest: {artifact_root / 'reconstruction_manifest.json'}")
    if manifest["failed_count"]:
        console.print(f"[bold red]{manifest['failed_count']} of {len(manifest['jobs'])} jobs failed[/]")
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except USER_ERRORS as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(2)
