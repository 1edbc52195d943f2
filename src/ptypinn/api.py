"""The Python API for notebooks and scripts: the study's steps as plain functions.

Each function is a thin front to the wing that does the work, with the defaults the command
line uses, so a notebook and ``ptypinn …`` give the same results::

    import ptypinn

    design = ptypinn.preset("smoke").model_copy(update={"doses": (1e4,)})
    ptypinn.simulate(design, "sim")
    result = ptypinn.train("sim/dose_10000/train.npz", "model", design=design, samples=2000)
    test = ptypinn.load_dataset("sim/dose_10000/test.npz")
    rec = ptypinn.reconstruct(result.bundle, test)
    print(ptypinn.score(rec, test)["scores"]["phase"]["ssim"])
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ptypinn.io.dataset import DatasetError, PtychoDataset, load_dataset
from ptypinn.study.design import (
    PRESETS,
    DesignError,
    StudyDesign,
    load_design,
    make_design,
    merged,
    preset,
    with_metrics,
)

if TYPE_CHECKING:
    from ptypinn.io.reconstruction import Reconstruction
    from ptypinn.pinn.runtime import TrainerOptions
    from ptypinn.pinn.train import TrainingResult
    from ptypinn.study.records import SimulationManifest


DesignLike = StudyDesign | str | os.PathLike | Mapping
DESIGN_FORMS = (
    "a StudyDesign, a preset name ('smoke', 'full'), a YAML design file, or a dict of fields "
    "laid over the smoke preset"
)


def _design(design: DesignLike) -> StudyDesign:
    """``design`` in any of its accepted forms (:data:`DESIGN_FORMS`)."""
    if isinstance(design, StudyDesign):
        return design
    if isinstance(design, Mapping):
        return make_design(merged(preset("smoke").to_dict(), dict(design)))
    if isinstance(design, str) and design in PRESETS:
        return preset(design)
    if isinstance(design, str | os.PathLike) and Path(design).is_file():
        return load_design(design, base="smoke")
    raise DesignError(f"design must be {DESIGN_FORMS}; got {design!r}")


def _dataset(data: PtychoDataset | str | os.PathLike) -> PtychoDataset:
    if isinstance(data, PtychoDataset):
        return data
    if isinstance(data, str | os.PathLike):
        return load_dataset(data)
    raise DatasetError(
        f"data must be a PtychoDataset or the path of a canonical NPZ, got {type(data).__name__}"
    )


def _reconstruction(
    reconstruction: Reconstruction | str | os.PathLike, truth: PtychoDataset
) -> np.ndarray:
    """The reconstructed object on ``truth``'s grid: a reconstruction's own, or that of the
    reconstruction file (NPZ or ptychodus product) at a path, placed as ``ptypinn score`` does."""
    from ptypinn.io.reconstruction import Reconstruction
    from ptypinn.study.scoring import load_reconstruction, on_truth_grid

    if isinstance(reconstruction, Reconstruction):
        return reconstruction.obj
    if isinstance(reconstruction, str | os.PathLike):
        return on_truth_grid(load_reconstruction(reconstruction), truth)
    raise DatasetError(
        "reconstruction must be a Reconstruction (from ptypinn.reconstruct) or the path of a "
        f"reconstruction NPZ or ptychodus product, got {type(reconstruction).__name__}"
    )


def simulate(
    design: DesignLike = "smoke",
    output: str | os.PathLike = "ptypinn-sim",
    doses: list[float] | None = None,
) -> SimulationManifest:
    """Phase C: simulate every dose of ``design`` (any form of :data:`DESIGN_FORMS`), split
    train/test and write ``<output>/dose_<int>/{train,test}.npz``; returns the manifest."""
    from ptypinn.study.simulate import run_simulation

    return run_simulation(_design(design), output, doses=doses)


def train(
    data: str | os.PathLike,
    output: str | os.PathLike,
    gridsize: int = 1,
    design: DesignLike = "smoke",
    options: TrainerOptions | None = None,
    **training: object,
) -> TrainingResult:
    """Train PtychoPINN on the NPZ ``data`` and write ``<output>/model.pt``. ``training`` changes
    the design's training settings (e.g. ``samples=20000``, ``generator="resnet"``)."""
    from ptypinn.pinn.runtime import TrainerOptions
    from ptypinn.pinn.train import train_model
    from ptypinn.study.training import job_spec

    spec = job_spec(_design(design), Path(data), gridsize, training)
    quiet = TrainerOptions(logger="none", checkpoints=False, progress=False)
    return train_model(spec, _dataset(data), Path(output), options or quiet)


def reconstruct(
    bundle: str | os.PathLike, data: PtychoDataset | str | os.PathLike, refine_steps: int = 0
) -> Reconstruction:
    """Reconstruct ``data`` (a dataset or its NPZ) with a trained bundle, optionally after
    ``refine_steps`` of test-time refinement on its diffraction (never its ground truth)."""
    from ptypinn.io.reconstruction import ReconstructionInput
    from ptypinn.pinn.inference import PtychoPINNOptions, PtychoPINNReconstructor

    options = PtychoPINNOptions(refine_steps=refine_steps)
    reconstructor = PtychoPINNReconstructor.from_bundle(Path(bundle), options)
    return reconstructor.reconstruct(ReconstructionInput.from_dataset(_dataset(data)))


def score(
    reconstruction: Reconstruction | str | os.PathLike,
    truth: PtychoDataset | str | os.PathLike,
    max_shift_px: float = 3,
) -> dict:
    """Every score of ``reconstruction`` against the true object of ``truth``, after the bounded
    alignment, with the alignment applied (what ``ptypinn score`` prints)."""
    from ptypinn.study.scoring import score_object

    dataset = _dataset(truth)
    metrics = with_metrics(preset("smoke"), max_shift_px=max_shift_px).metrics
    return score_object(_reconstruction(reconstruction, dataset), dataset, metrics)


def run_study(
    design: DesignLike = "smoke",
    output: str | os.PathLike = "study-output",
    resume: bool = False,
) -> Path:
    """Phases C to G end to end (``ptypinn study run``); returns the path of the report."""
    from ptypinn.study.runner import report_path
    from ptypinn.study.runner import run_study as run

    run(_design(design), Path(output), resume=resume)
    return report_path(Path(output))
