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
from .grouping import GroupingError

app = typer.Typer(
    name="ptypinn",
    help="Physics-informed neural-network ptychography and the dose x overlap study.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Mistakes a user can make (bad design, bad dataset): reported as one clear message, no traceback.
USER_ERRORS = (DesignError, DatasetError, GroupingError)

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


@app.command()
def overlap(
    phase_c_root: Annotated[Path, typer.Option(help="Phase C folder (simulation_manifest.json, dose_<int>/{train,test}.npz).", file_okay=False)],
    output_root: Annotated[Path, typer.Option(help="Folder for dose_<int>/<view>/{train,test}.npz, the manifest and metrics.json.", file_okay=False)],
    preset_name: Annotated[str, typer.Option("--preset", help=PRESET_HELP)] = "full",
    config: ConfigOption = None,
    dose: Annotated[Optional[list[float]], typer.Option(help="Dose to process; repeat for several. Default: every dose of phase C.")] = None,
    view: Annotated[Optional[list[str]], typer.Option(help="View to form; repeat for several. Default: every view of the design.")] = None,
) -> None:
    """Phase D: thin each dose's scan to every overlap view's minimum spacing, write the subsets and measure their overlap.

    Exits with status 1, after writing everything else, when a view keeps too few positions to be formed.
    """
    from .overlap import OVERLAP_MANIFEST, run_overlap

    design = resolve_design(preset_name, config)
    manifest = run_overlap(design, phase_c_root, output_root, doses=dose or None, views=view or None)
    console = Console(soft_wrap=True)
    for entry in manifest["doses"]:
        for item in entry["views"]:
            counts = item["counts"]
            kept = ", ".join(f"{c['kept']}/{c['kept'] + c['rejected']} {split}" for split, c in counts.items())
            if item["formed"]:
                measured = "/".join(f"{value:.3f}" for value in item["measured_fraction"].values())
                status = f"overlap target {item['target_fraction']:g}, measured {measured} (train/test)"
            else:
                status = "[bold red]not formed[/]"
            console.print(f"dose {entry['dose']:g} {item['view']} (S = {item['spacing_px']:.1f} px): kept {kept}; {status}")
    console.print(f"manifest: {output_root / OVERLAP_MANIFEST}")
    if manifest["not_formed"]:
        for item in manifest["not_formed"]:
            Console(stderr=True).print(f"not formed: dose {item['dose']:g} view {item['view']!r} {item['split']}: {item['reason']}", highlight=False)
        raise typer.Exit(code=1)


def main() -> None:
    try:
        app()
    except USER_ERRORS as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(2)
