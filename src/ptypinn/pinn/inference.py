"""PtychoPINN as a reconstructor: a trained bundle predicts a patch per position, stitched.

:class:`PtychoPINNReconstructor` follows :class:`ptypinn.engines.api.Reconstructor`: it takes a
:class:`~ptypinn.io.reconstruction.ReconstructionInput` and returns a
:class:`~ptypinn.io.reconstruction.Reconstruction` on the input's object grid. The network uses
the probe it was trained with (the bundle's), which is also the probe it reports.

For gridsize ≥ 2 the groups seeded at each position are thinned to those covering a new
position; each passes through the generator and the overlap constraint, and every member's
re-extracted patch is stitched. Patches are stitched with weights ``|P|²`` on the window the
generator predicts, after their constant phase offsets (invisible to the far field) are made
consistent (``stitch(synchronise=True)``). A reconstruction that holds NaN or infinite values is
refused (:class:`~ptypinn.physics.finite.NonFiniteError`).

Test-time refinement (``refine_steps`` > 0, "PtychoPINN + refine"): before inference a copy of
the trained network is fine-tuned for that many optimiser steps on the input's own diffraction
with the training's physics loss (:func:`ptypinn.pinn.model.physics_loss`, the bundle's loss
weights and dose scale; no ground truth), grouped as in training. The mean loss of each pass over
the data (the last one possibly partial) is the loss history; the bundle's network is left as it
was.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import DataLoader, TensorDataset

from ptypinn.io.dataset import DatasetError
from ptypinn.io.reconstruction import Reconstruction, ReconstructionInput
from ptypinn.physics.finite import require_finite
from ptypinn.physics.grouping import group_coordinates, make_groups
from ptypinn.physics.stitch import stitch
from ptypinn.pinn.config import RETRIEVAL_INPUTS
from ptypinn.pinn.model import PtychoPINN, overlap_constraint, physics_loss
from ptypinn.pinn.runtime import native_bf16, torch_threads
from ptypinn.pinn.train import load_bundle

METHOD = "ptychopinn"
LOSS = (
    "test-time refinement: mean physics loss (Poisson NLL of the counts) of each pass over the data"
)

GRID_MARGIN = (
    4  # a stitching grid may span at most this many times the area of all patterns together
)


class PtychoPINNOptions(BaseModel):
    """How a trained bundle reconstructs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(128, ge=1, description="groups per forward pass")
    synchronise: bool = Field(
        True, description="make the patches' constant phases agree before stitching"
    )
    refine_steps: int = Field(
        0,
        ge=0,
        description="test-time refinement: optimiser steps on the input's diffraction (0: none)",
    )
    refine_learning_rate: float = Field(1e-4, gt=0, description="Adam learning rate of refinement")
    refine_batch_size: int = Field(16, ge=1, description="groups per refinement step")
    seed: int = Field(0, description="order of the refinement batches")
    precision: Literal["auto", "32-true", "bf16-mixed"] = Field(
        "auto",
        description="the generator's arithmetic: auto is the bundle's training precision where "
        "the hardware computes it natively, else fp32 (the physics is always fp32)",
    )
    threads: int | None = Field(
        None, ge=1, description="torch intra-op threads (None: as set for the process)"
    )


def autocast(model: PtychoPINN, bundle: dict, precision: str) -> torch.autocast:
    """The generator's arithmetic for ``precision`` (:class:`PtychoPINNOptions`): bf16 autocast
    or none. The model's retrieval and physics steps switch autocast off themselves."""
    device = model.probe.device.type
    if precision == "auto":
        trained = bundle.get("precision", "32-true")
        native = native_bf16("gpu" if device == "cuda" else device)
        precision = "bf16-mixed" if trained == "bf16-mixed" and native else "32-true"
    return torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")


def stitch_weight(model: PtychoPINN) -> np.ndarray:
    """``|P|²`` where the model's patches live (:attr:`PtychoPINN.output_support`)."""
    probe = model.probe.detach().cpu()
    return (probe.abs().square() * model.output_support.cpu()).numpy()


def covering_groups(groups: np.ndarray, count: int) -> np.ndarray:
    """The groups (in their order) that each bring at least one position not yet covered."""
    covered = np.zeros(count, dtype=bool)
    chosen = []
    for index, members in enumerate(groups):
        if not covered[members].all():
            covered[members] = True
            chosen.append(index)
    return groups[chosen]


def inference_groups(
    positions: np.ndarray, gridsize: int, neighbor_count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The groups (G, C) a gridsize reconstructs a scan with and their member offsets (G, C, 2):
    one seeded at each position, thinned for gridsize ≥ 2 to those that cover a new position."""
    count = len(positions)
    groups = make_groups(positions, gridsize, neighbor_count, n_groups=count, seed=seed)
    if gridsize > 1:
        groups = covering_groups(groups, count)
    return groups, group_coordinates(positions, groups)[1]


@torch.inference_mode()
def predict_patches(
    model: PtychoPINN,
    diffraction: np.ndarray,
    positions: np.ndarray,
    neighbor_count: int,
    seed: int,
    batch_size: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """Object patches (m, N, N) and the index of the scan position each belongs to (m,).

    Gridsize 1: one patch per position. Gridsize ≥ 2: the groups seeded at each position, thinned
    to those that cover a new position; every member's constrained patch is kept, so a position
    may get several patches (the stitcher averages them).
    """
    model.eval()
    count = len(positions)
    size = model.probe.shape[-1]
    if diffraction.shape[-1] != size:
        held = f"{diffraction.shape[-1]}x{diffraction.shape[-1]}"
        raise DatasetError(f"the model was trained on {size}x{size} patterns; the data has {held}")
    groups, offsets = inference_groups(positions, model.gridsize, neighbor_count, seed)
    device = model.probe.device
    n = diffraction.shape[-1]

    def as_tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)

    single = None
    if model.shared and not len(model.refiners):  # no coupling before the overlap constraint:
        # a pattern's patch does not depend on its group, so predict each once
        blocks = (
            diffraction[start : start + batch_size, None] for start in range(0, count, batch_size)
        )
        single = torch.cat(
            [
                model.predict_patches(
                    as_tensor(block), torch.zeros(len(block), 1, 2, device=device)
                )
                for block in blocks
            ]
        )[:, 0]
    out = np.zeros((*groups.shape, n, n), dtype=np.complex64)
    for start in range(0, len(groups), batch_size):
        members = groups[start : start + batch_size]
        d = as_tensor(offsets[start : start + batch_size])
        patches = (
            single[torch.from_numpy(members)]
            if single is not None
            else model.predict_patches(as_tensor(diffraction[members]), d)
        )
        constrained = overlap_constraint(patches, d, model.output_support)
        out[start : start + len(members)] = constrained.cpu().numpy()
    return out.reshape(-1, n, n), groups.reshape(-1)


class RetrievalCache:
    """Each group's retrieval (:meth:`PtychoPINN.retrieved`), computed the first time the group
    is drawn and kept: it depends on the data alone, and refinement draws every group many
    times. ``None`` for a model whose inputs hold no retrieval."""

    def __init__(self, model: PtychoPINN) -> None:
        self.model = model
        self.kept: dict[int, torch.Tensor] = {}

    def __call__(
        self, index: torch.Tensor, diffraction: torch.Tensor, offsets: torch.Tensor
    ) -> torch.Tensor | None:
        if self.model.inputs not in RETRIEVAL_INPUTS:
            return None
        keys = index.tolist()
        new = [row for row, key in enumerate(keys) if key not in self.kept]
        if new:
            rows = torch.tensor(new)
            for key, value in zip(
                (keys[row] for row in new),
                self.model.retrieved(diffraction[rows], offsets[rows]),
                strict=True,
            ):
                self.kept[key] = value
        return torch.stack([self.kept[key] for key in keys])


def refine(
    model: PtychoPINN,
    bundle: dict,
    inp: ReconstructionInput,
    options: PtychoPINNOptions,
    advance: Callable[[int], None] | None = None,
) -> list[float]:
    """Fine-tune ``model`` in place on ``inp``'s diffraction with the physics loss for
    ``options.refine_steps`` steps (module docstring); returns the mean loss of each pass."""
    training = bundle["training"]
    if training.get("model", "pinn") != "pinn":
        raise ValueError(
            "test-time refinement needs a PINN bundle (physics loss); this one is supervised"
        )
    positions = inp.positions_px
    groups = make_groups(
        positions,
        model.gridsize,
        bundle["neighbor_count"],
        n_groups=inp.count,
        seed=bundle["grouping_seed"],
    )
    _, offsets = group_coordinates(positions, groups)
    data = TensorDataset(
        torch.arange(len(groups)),
        torch.from_numpy(np.ascontiguousarray(inp.diffraction[groups], dtype=np.float32)),
        torch.from_numpy(offsets.astype(np.float32)),
    )
    inputs = RetrievalCache(model)
    order = torch.Generator().manual_seed(options.seed)
    loader = DataLoader(data, batch_size=options.refine_batch_size, shuffle=True, generator=order)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.refine_learning_rate)
    weights = (training.get("nll_weight", 1.0), training.get("mae_weight", 0.0))
    history = []
    steps = 0
    model.train()
    with autocast(model, bundle, options.precision):  # the arithmetic of the training
        while steps < options.refine_steps:
            total, seen = 0.0, 0
            for index, diffraction, offset in itertools.islice(
                loader, options.refine_steps - steps
            ):
                loss = physics_loss(
                    model,
                    diffraction,
                    offset,
                    bundle["initial_intensity_scale"],
                    *weights,
                    inputs(index, diffraction, offset),
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(diffraction)
                seen += len(diffraction)
                steps += 1
                if advance is not None:
                    advance(1)
            history.append(total / seen)
    model.eval()
    return history


class PtychoPINNReconstructor:
    """A trained PtychoPINN bundle as a :class:`~ptypinn.engines.api.Reconstructor`.

    ``bundle`` is the bundle's metadata (:func:`ptypinn.pinn.train.load_bundle`): its grouping
    (``neighbor_count``, ``grouping_seed``) is the one inference uses.
    """

    method = METHOD

    def __init__(
        self, model: PtychoPINN, bundle: dict, options: PtychoPINNOptions | None = None
    ) -> None:
        self.model, self.bundle = model, bundle
        self.options = options or PtychoPINNOptions()

    @classmethod
    def from_bundle(
        cls, path: str | Path, options: PtychoPINNOptions | None = None
    ) -> PtychoPINNReconstructor:
        model, bundle = load_bundle(path)
        return cls(model, {**bundle, "path": str(path)}, options)

    def reconstruct(
        self, inp: ReconstructionInput, advance: Callable[[int], None] | None = None
    ) -> Reconstruction:
        """Refine a copy of the network if ``refine_steps`` (``advance`` is told about each
        step), then predict every patch and stitch them on the input's object grid."""
        model, bundle, options = self.model, self.bundle, self.options
        with torch_threads(options.threads):
            start = time.perf_counter()
            history: list[float] = []
            if options.refine_steps:
                model = copy.deepcopy(model)
                history = refine(model, bundle, inp, options, advance)
            with autocast(model, bundle, options.precision):
                patches, owners = predict_patches(
                    model,
                    inp.diffraction,
                    inp.positions_px,
                    bundle["neighbor_count"],
                    bundle["grouping_seed"],
                    options.batch_size,
                )
            obj, _ = stitch(
                patches,
                inp.positions_px[owners],
                inp.object_shape,
                stitch_weight(model),
                synchronise=options.synchronise,
            )
            wall_time = time.perf_counter() - start
        require_finite("the reconstructed object", obj)
        return Reconstruction(
            method=METHOD,
            obj=obj,
            probe=model.probe.detach().cpu().numpy().astype(np.complex64),
            positions_px=np.array(inp.positions_px, dtype=np.float64),
            geometry=inp.geometry,
            losses=np.asarray(history, dtype=np.float64),
            iterations=options.refine_steps,
            wall_time_s=wall_time,
            metadata={
                "options": options.model_dump(mode="json"),
                "bundle": bundle.get("path"),
                "gridsize": int(model.gridsize),
                "training": {
                    "architecture": bundle.get("architecture"),
                    "dataset": bundle.get("dataset"),
                    "epochs": len(bundle.get("history", [])),
                    "samples_seen": bundle.get("samples_seen"),
                },
                "loss": LOSS,
                "patterns_per_s": inp.count / wall_time if wall_time > 0 else None,
            },
        )
