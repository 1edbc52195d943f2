"""The PtychoPINN network: a CNN generator whose decoder is the ptychography forward model.

Shapes (channels first): diffraction ``X`` (B, C, N, N) normalised amplitudes, group offsets
``d`` (B, C, 2) = member position − group centroid as (x, y) pixels, probe ``P`` (N, N) complex.

* a generator (:mod:`ptypinn.pinn.generators`) maps C diffraction amplitudes to C complex
  object patches, predicted on the central N/2 × N/2 window and zero outside it.
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
  gridsize, inference and refinement all see it. With ``correction`` the generator's patch
  multiplies that retrieved object (×2, so its zeroed heads start at the identity).
* For gridsize ≥ 2 the generator is one single-pattern generator run on every member
  (``group_generator="shared"``, the default), so the members are coupled only by the overlap
  constraint, or it sees a group's C patterns as channels (``"channels"``, the method's
  reference).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ptypinn.physics.canvas import canvas_size, extract_from_canvas, merge_patches
from ptypinn.physics.forward import far_field, probe_backpropagation
from ptypinn.physics.retrieval import retrieve_patches
from ptypinn.pinn.config import GROUP_GENERATORS, INPUT_FEATURES
from ptypinn.pinn.generators import build_generator


def centre_mask(
    patch_size: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> torch.Tensor:
    """1 on the central N/2 × N/2 window the generator predicts, 0 elsewhere."""
    mask = torch.zeros(patch_size, patch_size, dtype=dtype, device=device)
    quarter = patch_size // 4
    mask[quarter : patch_size - quarter, quarter : patch_size - quarter] = 1
    return mask


def overlap_constraint(patches: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Average each group's patches where they overlap and cut them out again (no-op for C = 1)."""
    if patches.shape[1] == 1:
        return patches
    n = patches.shape[-1]
    weights = centre_mask(n, dtype=patches.real.dtype, device=patches.device)
    canvas, _ = merge_patches(patches, weights, offsets, canvas_size(n, offsets))
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
) -> torch.Tensor:
    """The PINN loss, no ground truth: Poisson NLL of the photon counts ``(intensity · X)²``
    given the model's amplitudes, plus ``mae_weight`` times their amplitude MAE."""
    _, amplitude = model(diffraction, offsets)
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
        group_generator: str = "shared",
        retrieval_iterations: int = 20,
        correction: bool = False,
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
        if correction and inputs != "retrieval":
            raise ValueError("correction needs inputs='retrieval'")
        self.gridsize, self.inputs = gridsize, inputs
        self.retrieval_iterations, self.correction = retrieval_iterations, correction
        # One generator for single patterns, run on every member, or one for whole groups.
        self.shared = group_generator == "shared" or gridsize == 1
        channels = 1 if self.shared else gridsize**2
        features = channels * (1 if inputs == "amplitude" else 3)
        self.generator = build_generator(generator, patch_size, channels, width, features)
        if correction:
            self.generator.start_at_identity()
        self.register_buffer("probe", probe.to(torch.complex64))
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))
        self.log_scale = nn.Parameter(
            torch.tensor(math.log(intensity_scale)), requires_grad=trainable_scale
        )

    def predict_patches(self, diffraction: torch.Tensor) -> torch.Tensor:
        """Object patches (B, C, N, N) straight from the generator (no overlap constraint)."""
        batch, channels, n, _ = diffraction.shape
        x = diffraction * self.input_scale
        features, retrieved = [x], None
        if self.inputs == "backprop":
            guess = probe_backpropagation(x, self.probe)
            features += [guess.real.to(x.dtype), guess.imag.to(x.dtype)]
        elif self.inputs == "retrieval":
            retrieved = self.retrieved(diffraction)
            guess = retrieved * (self.probe.abs() / self.probe.abs().max())
            features += [guess.real.to(x.dtype), guess.imag.to(x.dtype)]
        stacked = torch.stack(features, dim=2)  # (B, C, F, N, N): each pattern's features
        if self.shared:
            patches = self.generator(stacked.reshape(batch * channels, -1, n, n))
            patches = patches.reshape(batch, channels, n, n)
        else:
            patches = self.generator(stacked.reshape(batch, -1, n, n))
        if self.correction:
            assert retrieved is not None  # correction needs inputs="retrieval" (checked above)
            return 2 * patches * retrieved
        return patches

    def retrieved(self, diffraction: torch.Tensor) -> torch.Tensor:
        """Each pattern's single-pattern retrieval (B, C, N, N) complex; the diffraction's own
        units are the object's (``|O| <= 1``)."""
        n = diffraction.shape[-1]
        with torch.no_grad(), torch.autocast(diffraction.device.type, enabled=False):
            support = centre_mask(n, device=diffraction.device)
            return retrieve_patches(
                diffraction.float(), self.probe, support, self.retrieval_iterations
            )

    def forward(
        self, diffraction: torch.Tensor, offsets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        patches = overlap_constraint(self.predict_patches(diffraction), offsets)
        amplitude = far_field(self.probe * patches) * self.log_scale.exp()
        return patches, amplitude
