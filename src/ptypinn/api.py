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
from pathlib import Path
from typing import TYPE_CHECKING

from ptypinn.io.dataset import PtychoDataset, load_dataset
from ptypinn.study.design import StudyDesign, preset

if TYPE_CHECKING:
    from ptypinn.io.reconstruction import Reconstruction
    from ptypinn.pinn.runtime import TrainerOptions
    from ptypinn.pinn.train import TrainingResult


def _design(design: StudyDesign | str) -> StudyDesign:
    return preset(design) if isinstance(design, str) else design


def _dataset(data: PtychoDataset | str | os.PathLike) -> PtychoDataset:
    return data if isinstance(data, PtychoDataset) else load_dataset(data)


def simulate(
    design: StudyDesign | str = "smoke",
    output: str | os.PathLike = "ptypinn-sim",
    doses: list[float] | None = None,
) -> dict:
    """Phase C: simulate every dose of ``design`` (a design or a preset name), split train/test
    and write ``<output>/dose_<int>/{train,test}.npz``; returns the manifest."""
    from ptypinn.study.simulate import run_simulation

    return run_simulation(_design(design), output, doses=doses)


def train(
    data: str | os.PathLike,
    output: str | os.PathLike,
    gridsize: int = 1,
    design: StudyDesign | str = "smoke",
    options: TrainerOptions | None = None,
    **training: object,
) -> TrainingResult:
    """Train PtychoPINN on the NPZ ``data`` and write ``<output>/model.pt``. ``training`` changes
    the design's training settings (e.g. ``samples=20000``, ``generator="resnet"``)."""
    from ptypinn.pinn.runtime import TrainerOptions
    from ptypinn.pinn.train import JobSpec, train_model

    chosen = _design(design)
    settings = chosen.training.model_validate({**chosen.training.model_dump(), **training})
    spec = JobSpec(Path(data), gridsize, chosen.neighbor_count, chosen.seeds.grouping, settings)
    quiet = TrainerOptions(logger="none", checkpoints=False, progress=False)
    return train_model(spec, load_dataset(data), Path(output), options or quiet)


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
    reconstruction: Reconstruction,
    truth: PtychoDataset | str | os.PathLike,
    max_shift_px: float = 3,
) -> dict:
    """Every score of ``reconstruction`` against the true object of ``truth``, after the bounded
    alignment, with the alignment applied (what ``ptypinn score`` prints)."""
    from ptypinn.study.design import MetricsConfig
    from ptypinn.study.scoring import score_object

    return score_object(
        reconstruction.obj, _dataset(truth), MetricsConfig(max_shift_px=max_shift_px)
    )


def run_study(
    design: StudyDesign | str = "smoke",
    output: str | os.PathLike = "study-output",
    resume: bool = False,
) -> Path:
    """Phases C to G end to end (``ptypinn study run``); returns the path of the report."""
    from ptypinn.study.runner import report_path
    from ptypinn.study.runner import run_study as run

    run(_design(design), Path(output), resume=resume)
    return report_path(Path(output))
