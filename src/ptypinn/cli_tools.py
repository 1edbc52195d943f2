"""The commands of the ``ptypinn`` command line that work on single files: train one model,
reconstruct with it, convert between formats, score a reconstruction. :mod:`ptypinn.cli`
registers them beside the study's phases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ptypinn.cli_base import (
    ConfigOption,
    EpochsOption,
    PresetOption,
    resolve_design,
    say,
    with_trainer_flags,
)
from ptypinn.io.dataset import PtychoDataset
from ptypinn.io.formats import FileFormat, convert_file
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.study.design import with_epochs, with_metrics


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
    from ptypinn.pinn.train import train_model
    from ptypinn.study.training import job_spec

    design = with_epochs(resolve_design(preset_name, config), max_epochs)
    method = {"model": "supervised"} if supervised else {}
    spec = job_spec(design, train_file, gridsize, method, nphotons)
    assert options is not None  # with_trainer_flags always passes it
    result = train_model(spec, load_dataset(train_file), output, options)
    say(
        f"final loss {result.final_loss:.6g} after {result.epochs} epochs "
        f"({result.wall_time_s:.1f} s)"
    )
    say(f"bundle: {result.bundle} (sha256 {result.sha256})")


FORMAT_HELP = (
    "Format of {}: npz, cxi or product (ptychodus HDF5). "
    "Default: from the extension (.npz, .cxi, .h5/.hdf5)."
)


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
