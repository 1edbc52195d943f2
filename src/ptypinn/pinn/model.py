"""The PtychoPINN network: a CNN generator whose decoder is the ptychography forward model.

Shapes (channels first): diffraction ``X`` (B, C, N, N) normalised amplitudes, group offsets
``d`` (B, C, 2) = member position − group centroid as (x, y) pixels, probe ``P`` (N, N) complex.

* a generator (:mod:`ptypinn.pinn.generators`) maps C diffraction amplitudes to C complex
  object patches, predicted on its region (:func:`generator_region`: an N/2 × N/2 window centred
  on the probe, grown to hold the probe's footprint where the patches are the generator's alone)
  and zero outside it.
* :func:`merge_patches` / :func:`overlap_constraint` are the real-space overlap constraint for
  gridsize ≥ 2: each sample's C patches are laid on one canvas at their true offsets, averaged
  where they overlap (co-masked weights, per sample, never across the batch) and re-extracted.
* :class:`PtychoPINN` chains generator → overlap constraint → probe → far field → ``e^w`` scale,
  with ``w`` a trainable log intensity scale initialised from the dose. With ``inputs="backprop"``
  the generator also sees each pattern's probe back-propagation
  (:func:`ptypinn.physics.forward.probe_backpropagation`, real and imaginary parts): a real-space
  first guess, so the network need not learn the Fourier transform itself. With
  ``inputs="retrieval"`` it sees the object that ``retrieval_iterations`` of single-pattern phase
  retrieval give (:func:`ptypinn.physics.retrieval.retrieve_patches`, weighted by ``|P|/max|P|``):
  a better guess, computed on the fly in float32 outside the gradient, so augmentation, every
  gridsize, inference and refinement all see it. ``inputs="group_retrieval"`` runs the same
  iteration on each group's shared canvas (:func:`ptypinn.physics.retrieval.retrieve_groups`):
  the C guesses of a group share one phase reference and one twin state, and the overlap they
  carry is used before the network sees them. With ``correction`` the generator's patch
  multiplies the retrieved object (×2, so its zeroed heads start at the identity) on the window
  it predicts; where the probe's footprint reaches beyond that window the retrieval passes as it
  is.
* The retrieval's support is the probe's footprint
  (:func:`ptypinn.physics.retrieval.retrieval_support`, ``|P|²`` at least 1% of its peak),
  centred on the probe. A model whose patches are the generator's alone lives on the generator's
  region, which holds that whole footprint (no pixel of the light is cut, whatever the probe's
  size or place); a correcting or unrolled model lives on the footprint itself
  (:attr:`PtychoPINN.output_support`), its generator on an N/2 × N/2 window centred on the probe.
  The overlap constraint and the stitching weigh each patch by where it lives.
* For gridsize ≥ 2 the generator is one single-pattern generator run on every member
  (``group_generator="shared"``), so the members are coupled only by the overlap constraint, or it
  sees a group's C patterns as channels (``"channels"``, the method's reference and the only
  choice with group retrieval inputs).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ptypinn.physics.canvas import canvas_size, extract_from_canvas, merge_patches
from ptypinn.physics.forward import far_field, probe_backpropagation
from ptypinn.physics.retrieval import (
    fourier_projection,
    object_constraint,
    retrieval_support,
    retrieve_groups,
    retrieve_patches,
)
from ptypinn.pinn.config import GROUP_GENERATORS, INPUT_FEATURES, RETRIEVAL_INPUTS
from ptypinn.pinn.generators import (
    PatchRefiner,
    Region,
    build_generator,
    central_region,
    region_mask,
)


def generator_region(probe: torch.Tensor, cover_footprint: bool) -> Region:
    """Where the generator predicts, for ``probe`` (N, N): the N/2 × N/2 window centred on the
    probe's ``|P|²``-weighted centroid (rounded; kept inside the grid, so a probe centred on
    pixel N/2 gets the central window), grown with ``cover_footprint`` to the bounding box of the
    probe's footprint (:func:`ptypinn.physics.retrieval.retrieval_support`), so that a model whose
    patches are the generator's alone cuts none of the light."""
    n = probe.shape[-1]
    power = probe.detach().cpu().abs().double().square()
    index = torch.arange(n, dtype=torch.float64)
    total = power.sum()
    centre = [round(float((power.sum(dim) * index).sum() / total)) for dim in (1, 0)]
    _, _, side, _ = central_region(n)
    start = [min(max(c - side // 2, 0), n - side) for c in centre]
    end = [s + side for s in start]
    if cover_footprint:
        support = retrieval_support(probe) > 0
        for axis, covered in enumerate((support.any(1), support.any(0))):
            inside = torch.nonzero(covered).flatten()
            start[axis] = min(start[axis], int(inside[0]))
            end[axis] = max(end[axis], int(inside[-1]) + 1)
    return start[0], start[1], end[0] - start[0], end[1] - start[1]


def overlap_constraint(
    patches: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Average each group's patches where they overlap (each patch weighted by ``weights``, where
    it lives) and cut them out again (no-op for C = 1)."""
    if patches.shape[1] == 1:
        return patches
    n = patches.shape[-1]
    canvas, _ = merge_patches(
        patches, weights.to(patches.real.dtype), offsets, canvas_size(n, offsets)
    )
    return extract_from_canvas(canvas, offsets, n)


def poisson_nll(
    predicted_amplitude: torch.Tensor, counts: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """Mean Poisson negative log-likelihood of ``counts`` given the rate ``predicted_amplitude²``.

    The constant ``log k!`` is left out; ``eps`` keeps ``log λ`` finite where the rate is zero.
    """
    rate = predicted_amplitude.square()
    return nn.functional.poisson_nll_loss(rate, counts, log_input=False, full=False, eps=eps)


def physics_loss(
    model: PtychoPINN,
    diffraction: torch.Tensor,
    offsets: torch.Tensor,
    intensity: float,
    nll_weight: float = 1.0,
    mae_weight: float = 0.0,
    retrieved: torch.Tensor | None = None,
) -> torch.Tensor:
    """The PINN loss, no ground truth: Poisson NLL of the photon counts ``(intensity · X)²``
    given the model's amplitudes, plus ``mae_weight`` times their amplitude MAE (``retrieved``:
    :meth:`PtychoPINN.retrieved` of these groups, if already known)."""
    _, amplitude = model(diffraction, offsets, retrieved)
    target = diffraction * intensity
    loss = nll_weight * poisson_nll(amplitude, target.square())
    if mae_weight:
        loss = loss + mae_weight * (amplitude - target).abs().mean()
    return loss


class PtychoPINN(nn.Module):
    """Generator + physics decoder. ``forward`` returns (object patches, predicted count
    amplitudes)."""

    probe: torch.Tensor  # buffers (registered in __init__)
    input_scale: torch.Tensor
    support: torch.Tensor
    window: torch.Tensor  # the generator's region
    output_support: torch.Tensor

    def __init__(
        self,
        patch_size: int,
        gridsize: int,
        probe: torch.Tensor,
        intensity_scale: float,
        input_scale: float,
        width: int = 2,
        trainable_scale: bool = True,
        generator: str = "resnet",
        inputs: str = "amplitude",
        group_generator: str = "channels",
        retrieval_iterations: int = 20,
        correction: bool = False,
        unrolled_steps: int = 0,
    ) -> None:
        super().__init__()
        if probe.shape != (patch_size, patch_size):
            raise ValueError(f"probe must be {patch_size}x{patch_size}, got {tuple(probe.shape)}")
        if not intensity_scale > 0 or not input_scale > 0:
            raise ValueError("intensity and input scales must be positive")
        if inputs not in INPUT_FEATURES:
            raise ValueError(f"inputs must be one of {INPUT_FEATURES}, got {inputs!r}")
        if group_generator not in GROUP_GENERATORS:
            raise ValueError(
                f"group_generator must be one of {GROUP_GENERATORS}, got {group_generator!r}"
            )
        if retrieval_iterations < 1:
            raise ValueError(f"retrieval_iterations must be >= 1, got {retrieval_iterations}")
        if correction and inputs not in RETRIEVAL_INPUTS:
            raise ValueError(f"correction needs inputs in {RETRIEVAL_INPUTS}, got {inputs!r}")
        if inputs == "group_retrieval" and group_generator == "shared" and gridsize > 1:
            raise ValueError("inputs 'group_retrieval' need group_generator 'channels'")
        self.gridsize, self.inputs = gridsize, inputs
        self.retrieval_iterations, self.correction = retrieval_iterations, correction
        self.passthrough = False  # True: the model's input alone (see input_alone)
        # One generator for single patterns, run on every member, or one for whole groups.
        self.shared = group_generator == "shared" or gridsize == 1
        channels = 1 if self.shared else gridsize**2
        features = channels * (1 if inputs == "amplitude" else 3)
        self.generator = build_generator(generator, patch_size, channels, width, features)
        # the generator's patches alone must hold the light; a correction or steps fill the rest
        alone = not correction and not unrolled_steps
        self.generator.place(generator_region(probe, cover_footprint=alone))
        if correction:
            self.generator.start_at_identity()
        if unrolled_steps < 0:
            raise ValueError(f"unrolled_steps must be >= 0, got {unrolled_steps}")
        self.refiners = nn.ModuleList(PatchRefiner() for _ in range(unrolled_steps))
        self.register_buffer("probe", probe.to(torch.complex64))
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))
        # derived from the probe, so not saved with the weights
        self.register_buffer("support", retrieval_support(probe), persistent=False)
        window = region_mask(patch_size, self.generator.region)
        self.register_buffer("window", window, persistent=False)
        output = self.window if alone else self.support
        self.register_buffer("output_support", output.clone(), persistent=False)
        self.log_scale = nn.Parameter(
            torch.tensor(math.log(intensity_scale)), requires_grad=trainable_scale
        )

    def predict_patches(
        self,
        diffraction: torch.Tensor,
        offsets: torch.Tensor,
        retrieved: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Object patches (B, C, N, N) straight from the generator (no overlap constraint) for
        the groups' diffraction (B, C, N, N) at ``offsets`` (B, C, 2); ``retrieved`` is
        :meth:`retrieved` of these groups where the caller already has it (it depends on the
        data alone, never on the weights)."""
        batch, channels, n, _ = diffraction.shape
        x = diffraction * self.input_scale
        features, retrieved = [x], None
        if self.inputs == "backprop":
            guess = probe_backpropagation(x, self.probe)
            features += [guess.real.to(x.dtype), guess.imag.to(x.dtype)]
        elif self.inputs in RETRIEVAL_INPUTS:
            if retrieved is None:
                retrieved = self.retrieved(diffraction, offsets)
            if self.passthrough:
                return retrieved
            guess = retrieved * (self.probe.abs() / self.probe.abs().max())
            features += [guess.real.to(x.dtype), guess.imag.to(x.dtype)]
        stacked = torch.stack(features, dim=2)  # (B, C, F, N, N): each pattern's features
        if self.shared:
            patches = self.generator(stacked.reshape(batch * channels, -1, n, n))
            patches = patches.reshape(batch, channels, n, n)
        else:
            patches = self.generator(stacked.reshape(batch, -1, n, n))
        if self.correction:
            assert retrieved is not None  # correction needs retrieval inputs (checked above)
            # the correction on the generator's window, the identity elsewhere on the footprint
            patches = retrieved * torch.where(self.window > 0, 2 * patches, 1)
        return self.unrolled(patches, diffraction, offsets) if len(self.refiners) else patches

    def unrolled(
        self, patches: torch.Tensor, diffraction: torch.Tensor, offsets: torch.Tensor
    ) -> torch.Tensor:
        """``training.unrolled_steps`` differentiable updates of the patches, each the physics
        (the measured amplitudes, then the object constraint of the group, as one retrieval
        iteration by error reduction) followed by a small learned correction."""
        with torch.autocast(diffraction.device.type, enabled=False):
            measured = torch.fft.ifftshift(diffraction.float(), dim=(-2, -1))
            constraint = object_constraint(self.probe, self.support, offsets.float())
            for refine in self.refiners:
                patches = constraint(fourier_projection(self.probe * patches, measured))
                patches = refine(patches)
        return patches

    def retrieved(self, diffraction: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Each pattern's retrieval (B, C, N, N) complex: alone, or with its group on a shared
        canvas (``inputs="group_retrieval"``); the diffraction's own units are the object's
        (``|O| <= 1``)."""
        with torch.no_grad(), torch.autocast(diffraction.device.type, enabled=False):
            amplitudes = diffraction.float()
            if self.inputs == "group_retrieval" and diffraction.shape[1] > 1:
                return retrieve_groups(
                    amplitudes, offsets.float(), self.probe, self.support, self.retrieval_iterations
                )
            return retrieve_patches(amplitudes, self.probe, self.support, self.retrieval_iterations)

    def forward(
        self,
        diffraction: torch.Tensor,
        offsets: torch.Tensor,
        retrieved: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        patches = overlap_constraint(
            self.predict_patches(diffraction, offsets, retrieved), offsets, self.output_support
        )
        amplitude = far_field(self.probe * patches) * self.log_scale.exp()
        return patches, amplitude


def input_alone(model: PtychoPINN) -> PtychoPINN | None:
    """A copy of ``model`` whose patches are its retrieval alone, without the network (what the
    generator is given); None for inputs that hold no object guess."""
    if model.inputs not in RETRIEVAL_INPUTS:
        return None
    alone = copy.deepcopy(model)
    alone.passthrough = True
    alone.output_support = alone.support
    return alone
