import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from ptypinn.physics.forward import disk_probe, extract_patches, far_field
from ptypinn.physics.retrieval import retrieve_patches
from ptypinn.pinn.generators import GENERATORS, build_generator
from ptypinn.pinn.model import PtychoPINN, centre_mask, overlap_constraint, poisson_nll


def smooth_object(size=160, seed=0, sigma=6.0):
    rng = np.random.default_rng(seed)
    amplitude = 0.8 + 2 * (gaussian_filter(rng.random((size, size)), sigma) - 0.5)
    phase = gaussian_filter(rng.normal(size=(size, size)), sigma) * 4 * sigma
    return torch.from_numpy((np.clip(amplitude, 0.1, 1) * np.exp(1j * phase)).astype(np.complex64))


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("n, channels", [(64, 1), (64, 4), (128, 4)])
def test_generator_shapes_heads_and_centre_support(name, n, channels):
    torch.manual_seed(0)
    out = build_generator(name, n, channels, 1)(torch.rand(2, channels, n, n))
    assert out.shape == (2, channels, n, n) and out.dtype == torch.complex64
    inside = centre_mask(n).bool()
    assert torch.all(out[..., ~inside] == 0)
    amplitude, phase = out[..., inside].abs(), out[..., inside].angle()
    assert torch.all((amplitude > 0) & (amplitude < 1)) and torch.all(phase.abs() < math.pi)


def test_unsupported_patch_size_is_refused():
    with pytest.raises(ValueError, match="N must be one of"):
        build_generator("cnn", 96, 1, 1)
    with pytest.raises(ValueError, match="unknown generator 'mlp'"):
        build_generator("mlp", 64, 1, 1)


def test_overlap_constraint_keeps_patches_cut_from_one_object():
    obj = smooth_object()
    positions = torch.tensor(
        [[80.0, 80.0], [91.3, 84.6], [74.5, 93.2], [88.1, 97.9], [70.2, 71.7], [95.0, 70.5]]
    )
    groups = torch.tensor([[0, 1, 2, 3], [4, 0, 5, 1]])
    members = positions[groups]  # (2, 4, 2)
    patches = extract_patches(obj, members.reshape(-1, 2), 64).reshape(2, 4, 64, 64)
    offsets = members - members.mean(1, keepdim=True)
    merged = overlap_constraint(patches, offsets)
    inside = centre_mask(64).bool()
    error = (merged - patches)[..., inside].abs()
    # Only bilinear resampling (there and back) separates them: a few % of |O| ~ 0.8 at most.
    assert error.mean() < 0.02 and error.max() < 0.06


def test_overlap_constraint_is_per_sample():
    """Two groups with different content in one batch must not leak into each other."""
    patches = torch.zeros(2, 4, 64, 64, dtype=torch.complex64)
    patches[1] = 1.0
    offsets = torch.tensor([[[-5.0, -5.0], [5.0, -5.0], [-5.0, 5.0], [5.0, 5.0]]]).expand(2, 4, 2)
    merged = overlap_constraint(patches, offsets)
    inside = centre_mask(64).bool()
    assert torch.all(merged[0] == 0)
    assert torch.allclose(merged[1][..., inside], torch.ones(()) + 0j, atol=1e-5)


def test_overlap_constraint_is_identity_for_gridsize_one():
    patches = torch.randn(3, 1, 64, 64, dtype=torch.complex64)
    assert torch.equal(overlap_constraint(patches, torch.zeros(3, 1, 2)), patches)


def test_poisson_nll_is_smallest_at_the_true_rate():
    counts = torch.tensor([0.0, 1.0, 4.0, 9.0])
    best = poisson_nll(counts.sqrt(), counts)
    for factor in (0.8, 1.25):
        assert poisson_nll((counts * factor).sqrt(), counts) > best
    # d/dλ (λ - k log λ) = 0 at λ = k: the loss equals mean(k - k log k) (0 log 0 = 0 via eps).
    expected = torch.mean(counts - torch.xlogy(counts, counts))
    assert torch.isclose(best, expected, atol=1e-4)


def test_physics_decoder_reproduces_the_simulator_for_the_true_object():
    obj = smooth_object()
    probe = torch.from_numpy(disk_probe(64, 24, curvature=3.0))
    positions = torch.tensor([[80.0, 80.0], [90.0, 84.0], [76.0, 92.0], [88.0, 95.0]])
    truth = extract_patches(obj, positions, 64)
    simulated = far_field(probe * truth)  # what simulate.clean_amplitudes computes
    model = PtychoPINN(64, 2, probe, intensity_scale=3.0, input_scale=1.0, width=1)
    offsets = positions - positions.mean(0)
    masked = truth * centre_mask(64)
    predicted = (
        far_field(model.probe * overlap_constraint(masked[None], offsets[None]))[0]
        * model.log_scale.exp()
    )
    # The probe (diameter 24 px < N/2) lies inside the predicted window, so the masked truth is
    # enough; what is left is bilinear resampling in the merge.
    error = torch.linalg.norm(predicted / 3.0 - simulated) / torch.linalg.norm(simulated)
    flat = far_field(probe * torch.ones_like(truth))
    assert error < 0.05 < torch.linalg.norm(flat - simulated) / torch.linalg.norm(simulated)


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    probe = torch.from_numpy(disk_probe(64, 24))
    model = PtychoPINN(64, 2, probe, intensity_scale=10.0, input_scale=2.0, width=1)
    x = torch.rand(2, 4, 64, 64)
    offsets = torch.tensor([[[-4.0, -3.0], [4.0, -3.0], [-4.0, 3.0], [4.0, 3.0]]]).expand(2, 4, 2)
    _, amplitude = model(x, offsets)
    poisson_nll(amplitude, (10 * x) ** 2).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_a_shared_group_generator_predicts_each_member_as_if_alone():
    probe = torch.from_numpy(disk_probe(64, 32.0))
    torch.manual_seed(0)
    x = torch.rand(3, 4, 64, 64)
    shared = PtychoPINN(64, 2, probe, 100.0, 1.0, width=1, group_generator="shared")
    together = shared.predict_patches(x)
    for member in range(4):
        alone = shared.predict_patches(x[:, member : member + 1])[:, 0]
        torch.testing.assert_close(together[:, member], alone, atol=1e-6, rtol=0)
    # with channels the members' patches depend on each other
    joint = PtychoPINN(64, 2, probe, 100.0, 1.0, width=1, group_generator="channels")
    moved = x.clone()
    moved[:, 1] = torch.rand(3, 64, 64)
    assert not torch.allclose(joint.predict_patches(x)[:, 0], joint.predict_patches(moved)[:, 0])
    torch.testing.assert_close(
        shared.predict_patches(x)[:, 0], shared.predict_patches(moved)[:, 0], atol=1e-6, rtol=0
    )


def test_retrieval_inputs_are_each_patterns_retrieval_in_full_precision():
    probe = torch.from_numpy(disk_probe(64, 28.0, curvature=3.0))
    obj = torch.exp(1j * torch.rand(2, 4, 64, 64)).to(torch.complex64)
    x = far_field(probe * obj)
    model = PtychoPINN(
        64, 2, probe, 100.0, 1.0, width=1, inputs="retrieval", retrieval_iterations=4
    )
    expected = retrieve_patches(x, probe, centre_mask(64), 4)
    torch.testing.assert_close(model.retrieved(x), expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(model.retrieved(x), expected)
        patches = model.predict_patches(x)
    assert patches.shape == (2, 4, 64, 64)
    assert model.generator.stem[0].in_channels == 3


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_an_untrained_correction_returns_the_retrieval(name):
    probe = torch.from_numpy(disk_probe(64, 28.0, curvature=3.0))
    obj = torch.exp(1j * torch.rand(2, 4, 64, 64)).to(torch.complex64)
    x = far_field(probe * obj)
    model = PtychoPINN(
        64,
        2,
        probe,
        100.0,
        1.0,
        width=1,
        generator=name,
        inputs="retrieval",
        retrieval_iterations=4,
        correction=True,
    )
    torch.testing.assert_close(model.predict_patches(x), model.retrieved(x))
    with pytest.raises(ValueError, match="correction"):
        PtychoPINN(64, 1, probe, 100.0, 1.0, inputs="backprop", correction=True)
