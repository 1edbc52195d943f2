import math
from typing import get_args

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from ptypinn.physics.forward import extract_patches, far_field
from ptypinn.physics.probes import disk_probe
from ptypinn.physics.retrieval import (
    fourier_projection,
    object_constraint,
    retrieval_support,
    retrieve_groups,
    retrieve_patches,
)
from ptypinn.pinn.config import GeneratorName
from ptypinn.pinn.generators import (
    GENERATORS,
    build_generator,
    central_region,
    generator,
    region_mask,
)
from ptypinn.pinn.model import (
    PtychoPINN,
    generator_region,
    input_alone,
    overlap_constraint,
    poisson_nll,
)


def centre_window(n):
    """The central N/2 x N/2 window: where a generator predicts by default."""
    return region_mask(n, central_region(n))


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
    inside = centre_window(n).bool()
    assert torch.all(out[..., ~inside] == 0)
    amplitude, phase = out[..., inside].abs(), out[..., inside].angle()
    assert torch.all((amplitude > 0) & (amplitude < 1)) and torch.all(phase.abs() < math.pi)


def test_every_generator_the_design_accepts_is_registered():
    assert set(get_args(GeneratorName)) == set(GENERATORS)
    with pytest.raises(ValueError, match="registered twice"):
        generator("cnn")(GENERATORS["cnn"])


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
    merged = overlap_constraint(patches, offsets, centre_window(64))
    inside = centre_window(64).bool()
    error = (merged - patches)[..., inside].abs()
    # Only bilinear resampling (there and back) separates them: a few % of |O| ~ 0.8 at most.
    assert error.mean() < 0.02 and error.max() < 0.06


def test_overlap_constraint_is_per_sample():
    """Two groups with different content in one batch must not leak into each other."""
    patches = torch.zeros(2, 4, 64, 64, dtype=torch.complex64)
    patches[1] = 1.0
    offsets = torch.tensor([[[-5.0, -5.0], [5.0, -5.0], [-5.0, 5.0], [5.0, 5.0]]]).expand(2, 4, 2)
    merged = overlap_constraint(patches, offsets, centre_window(64))
    inside = centre_window(64).bool()
    assert torch.all(merged[0] == 0)
    assert torch.allclose(merged[1][..., inside], torch.ones(()) + 0j, atol=1e-5)


def test_overlap_constraint_is_identity_for_gridsize_one():
    patches = torch.randn(3, 1, 64, 64, dtype=torch.complex64)
    assert torch.equal(
        overlap_constraint(patches, torch.zeros(3, 1, 2), centre_window(64)), patches
    )


def test_poisson_nll_is_smallest_at_the_true_rate():
    counts = torch.tensor([0.0, 1.0, 4.0, 9.0])
    best = poisson_nll(counts.sqrt(), counts)
    for factor in (0.8, 1.25):
        assert poisson_nll((counts * factor).sqrt(), counts) > best
    # d/dλ (λ - k log λ) = 0 at λ = k: the loss equals mean(k - k log k) (0 log 0 = 0 via eps).
    expected = torch.mean(counts - torch.xlogy(counts, counts))
    assert torch.isclose(best, expected, atol=1e-4)


@pytest.mark.parametrize("inputs", ["amplitude", "group_retrieval"])
def test_physics_decoder_reproduces_the_simulator_for_the_true_object(inputs):
    """The identity of the overlap path: with the true object's patches as the generator's output,
    a gridsize-2 model's forward model gives the simulated noise-free diffraction at sub-pixel
    offsets. A model that corrects a retrieval lives on the probe's footprint, which this probe
    (32 px, the smoke default) overfills the generator's window by."""
    obj = smooth_object()
    probe = torch.from_numpy(disk_probe(64, 32 if inputs == "group_retrieval" else 24, 3.0))
    positions = torch.tensor([[80.3, 80.6], [90.7, 84.1], [76.2, 92.9], [88.5, 95.4]])
    truth = extract_patches(obj, positions.double(), 64)
    simulated = far_field(probe * truth)  # what simulate.clean_amplitudes computes
    correcting = inputs == "group_retrieval"
    model = PtychoPINN(64, 2, probe, 3.0, 1.0, width=1, inputs=inputs, correction=correcting)
    if inputs == "group_retrieval":
        assert torch.equal(model.output_support, retrieval_support(probe))
    offsets = positions - positions.mean(0)
    masked = truth * model.output_support
    predicted = (
        far_field(
            model.probe * overlap_constraint(masked[None], offsets[None], model.output_support)
        )[0]
        * model.log_scale.exp()
    )
    # what is left is bilinear resampling in the merge
    error = torch.linalg.norm(predicted / 3.0 - simulated) / torch.linalg.norm(simulated)
    flat = far_field(probe * torch.ones_like(truth))
    assert error < 0.05 < torch.linalg.norm(flat - simulated) / torch.linalg.norm(simulated)
    if inputs == "group_retrieval":  # the generator's window alone would cut the probe's rim
        window = model.window
        cut = far_field(
            model.probe * overlap_constraint((truth * window)[None], offsets[None], window)
        )[0]
        assert torch.linalg.norm(cut - simulated) / torch.linalg.norm(simulated) > 2 * error


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
    d = torch.zeros(3, 4, 2)
    together = shared.predict_patches(x, d)
    for member in range(4):
        alone = shared.predict_patches(x[:, member : member + 1], d[:, :1])[:, 0]
        torch.testing.assert_close(together[:, member], alone, atol=1e-6, rtol=0)
    # with channels the members' patches depend on each other
    joint = PtychoPINN(64, 2, probe, 100.0, 1.0, width=1, group_generator="channels")
    moved = x.clone()
    moved[:, 1] = torch.rand(3, 64, 64)
    assert not torch.allclose(
        joint.predict_patches(x, d)[:, 0], joint.predict_patches(moved, d)[:, 0]
    )
    torch.testing.assert_close(
        shared.predict_patches(x, d)[:, 0],
        shared.predict_patches(moved, d)[:, 0],
        atol=1e-6,
        rtol=0,
    )


GROUP_OFFSETS = torch.tensor([[[-4.5, -3.2], [4.1, -3.6], [-3.8, 4.3], [4.2, 2.5]]]).expand(2, 4, 2)


def test_retrieval_inputs_are_each_patterns_retrieval_in_full_precision():
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
        inputs="retrieval",
        retrieval_iterations=4,
        group_generator="shared",
    )
    expected = retrieve_patches(x, probe, retrieval_support(probe), 4)
    torch.testing.assert_close(model.retrieved(x, GROUP_OFFSETS), expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(model.retrieved(x, GROUP_OFFSETS), expected)
        patches = model.predict_patches(x, GROUP_OFFSETS)
    assert patches.shape == (2, 4, 64, 64)
    assert model.generator.stem[0].in_channels == 3


def test_group_retrieval_inputs_are_each_groups_joint_retrieval_seen_as_channels():
    probe = torch.from_numpy(disk_probe(64, 28.0, curvature=3.0))
    obj = torch.exp(1j * torch.rand(2, 4, 64, 64)).to(torch.complex64)
    x = far_field(probe * obj)
    model = PtychoPINN(
        64, 2, probe, 100.0, 1.0, width=1, inputs="group_retrieval", retrieval_iterations=4
    )
    expected = retrieve_groups(x, GROUP_OFFSETS, probe, retrieval_support(probe), 4)
    torch.testing.assert_close(model.retrieved(x, GROUP_OFFSETS), expected)
    assert not model.shared and model.generator.stem[0].in_channels == 12
    # at gridsize 1 a group is one pattern: its retrieval alone
    single = PtychoPINN(64, 1, probe, 100.0, 1.0, width=1, inputs="group_retrieval")
    torch.testing.assert_close(
        single.retrieved(x[:, :1], torch.zeros(2, 1, 2)),
        retrieve_patches(x[:, :1], probe, retrieval_support(probe), 20),
    )
    with pytest.raises(ValueError, match="group_generator 'channels'"):
        PtychoPINN(64, 2, probe, 1.0, 1.0, inputs="group_retrieval", group_generator="shared")


@pytest.mark.parametrize("inputs", ["retrieval", "group_retrieval"])
@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_an_untrained_correction_returns_the_retrieval(name, inputs):
    probe = torch.from_numpy(disk_probe(64, 32.0, curvature=3.0))
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
        inputs=inputs,
        retrieval_iterations=4,
        correction=True,
    )
    retrieved = model.retrieved(x, GROUP_OFFSETS)
    # the retrieval lives on the footprint, wider than the generator's window: none of it is cut
    assert float(retrieved[..., model.window == 0].abs().max()) > 0.1
    torch.testing.assert_close(model.predict_patches(x, GROUP_OFFSETS), retrieved)
    with pytest.raises(ValueError, match="correction"):
        PtychoPINN(64, 1, probe, 100.0, 1.0, inputs="backprop", correction=True)


def test_the_input_alone_is_the_retrieval_without_the_network():
    torch.manual_seed(0)
    probe = torch.from_numpy(disk_probe(64, 32.0, curvature=3.0))
    x = far_field(probe * torch.exp(1j * torch.rand(2, 4, 64, 64)).to(torch.complex64))
    model = PtychoPINN(
        64, 2, probe, 100.0, 1.0, width=1, inputs="group_retrieval", correction=False
    )
    alone = input_alone(model)
    assert alone is not None and not model.passthrough
    torch.testing.assert_close(
        alone.predict_patches(x, GROUP_OFFSETS), model.retrieved(x, GROUP_OFFSETS)
    )
    assert torch.equal(alone.output_support, retrieval_support(probe))
    assert not torch.allclose(
        model.predict_patches(x, GROUP_OFFSETS), model.retrieved(x, GROUP_OFFSETS)
    )
    assert input_alone(PtychoPINN(64, 1, probe, 1.0, 1.0, inputs="amplitude")) is None


@pytest.mark.parametrize("gridsize", [1, 2])
def test_untrained_unrolled_steps_are_error_reduction_steps_from_the_retrieval(gridsize):
    """Each unrolled step is one physics update (measured amplitudes, then the group's object
    constraint) and a learned correction that starts as the identity; the gradient reaches every
    step's correction."""
    torch.manual_seed(0)
    probe = torch.from_numpy(disk_probe(64, 32.0, curvature=3.0))
    channels = gridsize**2
    x = far_field(probe * torch.exp(1j * torch.rand(2, channels, 64, 64)).to(torch.complex64))
    offsets = GROUP_OFFSETS[:, :channels] if gridsize > 1 else torch.zeros(2, 1, 2)
    model = PtychoPINN(
        64,
        gridsize,
        probe,
        10.0,
        1.0,
        width=1,
        inputs="group_retrieval",
        correction=True,
        retrieval_iterations=3,
        unrolled_steps=2,
    )
    support = retrieval_support(probe)
    reference = (
        retrieve_groups(x, offsets, probe, support, 3)
        if gridsize > 1
        else retrieve_patches(x, probe, support, 3)
    )
    measured = torch.fft.ifftshift(x, dim=(-2, -1))
    constraint = object_constraint(probe, support, offsets)
    for _ in range(2):
        reference = constraint(fourier_projection(probe * reference, measured))
    torch.testing.assert_close(model.predict_patches(x, offsets), reference, atol=1e-5, rtol=0)
    _, amplitude = model(x, offsets)
    poisson_nll(amplitude, (10 * x) ** 2).backward()
    for refiner in model.refiners:
        assert refiner.body[-1].weight.grad.abs().sum() > 0


def shifted_disk(diameter=32.0, rows=8, cols=-6):
    """The smoke disk moved off the grid's centre by whole pixels (the field is periodic)."""
    return torch.from_numpy(np.roll(disk_probe(64, diameter, 2.0), (rows, cols), axis=(0, 1)))


@pytest.mark.parametrize(
    "probe, centre",
    [
        (torch.from_numpy(disk_probe(64, 32.0, 2.0)), (32, 32)),
        (shifted_disk(), (40, 26)),  # moved by (+8, -6) px
        (torch.from_numpy(disk_probe(64, 48.0, 2.0)), (32, 32)),  # footprint 3/4 of N
    ],
)
def test_the_generator_region_is_centred_on_the_probe_and_holds_its_footprint(probe, centre):
    footprint = retrieval_support(probe) > 0
    top, left, height, width = generator_region(probe, cover_footprint=False)
    # a correcting model's generator: N/2 x N/2 centred on the probe (the central window for a
    # probe centred on pixel N/2, as the generators always predicted)
    assert (top, left, height, width) == (centre[0] - 16, centre[1] - 16, 32, 32)
    grown = region_mask(64, generator_region(probe, cover_footprint=True)).bool()
    window = region_mask(64, (top, left, height, width)).bool()
    assert torch.all(grown[footprint]) and torch.all(grown[window])
    rows, cols = (
        torch.nonzero(footprint.any(1)).flatten(),
        torch.nonzero(footprint.any(0)).flatten(),
    )
    # no larger than the footprint's bounding box and the window together
    assert int(grown.any(1).sum()) == max(int(rows[-1]), top + 31) - min(int(rows[0]), top) + 1
    assert int(grown.any(0).sum()) == max(int(cols[-1]), left + 31) - min(int(cols[0]), left) + 1


@pytest.mark.parametrize("probe", [shifted_disk(), torch.from_numpy(disk_probe(64, 48.0, 2.0))])
def test_a_model_of_the_generator_alone_predicts_on_the_whole_footprint(probe):
    """Off centre or 3/4 of N across: the generator's patches of an amplitude model cover every
    footprint pixel (the central N/2 window would cut some), and nothing else."""
    torch.manual_seed(0)
    footprint = retrieval_support(probe) > 0
    assert not torch.all(centre_window(64).bool()[footprint])  # the old window cuts the light
    model = PtychoPINN(64, 1, probe, 100.0, 1.0, width=1, inputs="amplitude")
    patches = model.predict_patches(torch.rand(2, 1, 64, 64), torch.zeros(2, 1, 2))
    inside = model.output_support.bool()
    assert torch.equal(inside, model.window.bool()) and torch.all(inside[footprint])
    assert torch.all(patches[..., inside].abs() > 0) and torch.all(patches[..., ~inside] == 0)
    correcting = PtychoPINN(64, 1, probe, 100.0, 1.0, width=1, inputs="retrieval", correction=True)
    assert torch.equal(correcting.output_support.bool(), footprint)


def test_a_generator_placed_on_a_larger_region_fills_it():
    generator = build_generator("resnet", 64, 1, 1)
    generator.place((5, 9, 50, 41))
    out = generator(torch.rand(2, 1, 64, 64))
    inside = region_mask(64, (5, 9, 50, 41)).bool()
    assert torch.all(out[..., inside].abs() > 0) and torch.all(out[..., ~inside] == 0)
    with pytest.raises(ValueError, match="not inside the 64-px patch"):
        generator.place((40, 0, 32, 32))
