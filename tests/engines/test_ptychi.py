"""pty-chi conventions, each checked against pty-chi's own code, and the LSQML adapter."""

import dataclasses

import numpy as np
import pytest
import torch

from ptypinn.engines.api import PtychiOptions
from ptypinn.engines.frame import ObjectFrame
from ptypinn.engines.ptychi import (
    PtychiReconstructor,
    contained,
    from_ptychi_intensity,
    from_ptychi_object,
    from_ptychi_probe,
    load_ptychi,
    to_ptychi_intensity,
    to_ptychi_object,
    to_ptychi_probe,
)
from ptypinn.physics.forward import far_field


def test_our_amplitudes_become_the_intensities_of_ptychis_own_far_field(rng):
    load_ptychi()  # pty-chi imports through the torchvision shim
    from ptychi.io_handles import PtychographyDataset
    from ptychi.propagate import FourierPropagator

    waves = torch.from_numpy(
        (rng.normal(size=(3, 16, 16)) + 1j * rng.normal(size=(3, 16, 16))).astype(np.complex64)
    )
    amplitude = far_field(waves).numpy()
    stored = PtychographyDataset(to_ptychi_intensity(amplitude), fft_shift=True).patterns.numpy()
    theirs = FourierPropagator().propagate_forward(waves).abs().square().numpy()
    np.testing.assert_allclose(stored, theirs, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(
        from_ptychi_intensity(to_ptychi_intensity(amplitude)), amplitude, rtol=1e-6
    )


def test_probe_and_object_layouts_round_trip(rng):
    probe = (rng.normal(size=(16, 16)) + 1j * rng.normal(size=(16, 16))).astype(np.complex64)
    assert to_ptychi_probe(probe).shape == (1, 1, 16, 16)  # (OPR modes, incoherent modes, N, N)
    np.testing.assert_array_equal(
        from_ptychi_probe(torch.from_numpy(to_ptychi_probe(probe))), probe
    )
    obj = (rng.normal(size=(30, 40)) + 1j * rng.normal(size=(30, 40))).astype(np.complex64)
    frame = ObjectFrame(shape=obj.shape, pad=(2, 3, 4, 5))
    assert to_ptychi_object(obj, frame).shape == (1, 35, 49)  # (slices, H', W')
    np.testing.assert_array_equal(from_ptychi_object(to_ptychi_object(obj, frame), frame), obj)


def misfit(inp, obj, positions, options=None):
    """Relative amplitude misfit of pty-chi's LSQML model of the truth against our data."""
    engine = PtychiReconstructor(options or PtychiOptions())
    with contained(1), torch.no_grad():
        task, _ = engine.task(dataclasses.replace(inp, positions_px=positions, initial_object=obj))
        intensity = task.reconstructor.forward_model.forward(torch.arange(len(positions))).numpy()
    amplitude = from_ptychi_intensity(np.fft.fftshift(intensity, axes=(-2, -1)))  # back to centred
    return np.linalg.norm(amplitude - inp.diffraction) / np.linalg.norm(inp.diffraction)


@pytest.mark.parametrize("interpolation", ["fourier", "bilinear"])
def test_ptychis_model_of_the_truth_reproduces_our_data_at_whole_pixels(
    simulated_input, interpolation
):
    inp, obj = simulated_input(
        step=8.0
    )  # whole-pixel positions; windows reach past the object's edges
    assert (
        misfit(inp, obj, inp.positions_px, PtychiOptions(patch_interpolation=interpolation)) < 1e-5
    )
    shifted = inp.positions_px + [1.0, 0.0]  # one pixel off along x is far off
    assert misfit(inp, obj, shifted) > 0.1


def test_subpixel_positions_keep_sign_and_axis_order(simulated_input):
    """LSQML shifts the probe, not the object, by the sub-pixel part: about 6 % misfit (module
    docstring), and every other reading of the positions misfits more."""
    inp, obj = simulated_input(step=8.0, jitter=1.5)
    whole = np.round(inp.positions_px)
    fraction = inp.positions_px - whole
    ours = misfit(inp, obj, inp.positions_px)
    assert ours < 0.07
    assert (
        min(
            misfit(inp, obj, whole),
            misfit(inp, obj, whole - fraction),
            misfit(inp, obj, whole + fraction[:, ::-1]),
        )
        > ours + 0.01
    )


def test_same_seed_same_reconstruction_and_refined_probe_moves(simulated_input):
    inp, _ = simulated_input(step=12.0)
    first, second = (
        PtychiReconstructor(PtychiOptions(iterations=2, seed=3)).reconstruct(inp) for _ in range(2)
    )
    np.testing.assert_array_equal(first.obj, second.obj)
    assert first.metadata["torchvision"] and first.metadata["loss"].startswith("pty-chi LSQML")
    refined = PtychiReconstructor(
        PtychiOptions(iterations=2, seed=3, refine_probe=True)
    ).reconstruct(inp)
    assert refined.metadata["probe_refined"] and not np.array_equal(refined.probe, inp.probe)
