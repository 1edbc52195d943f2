import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from ptypinn.physics import forward as physics
from ptypinn.physics.retrieval import (
    EPSILON,
    fourier_projection,
    object_projection,
    probe_inverse,
    retrieve_patches,
)

SIZE = 32


def centre_mask(size):
    """The central size/2 × size/2 window."""
    window = torch.zeros(size, size)
    window[size // 4 : size - size // 4, size // 4 : size - size // 4] = 1
    return window


@pytest.fixture
def probe():
    return torch.from_numpy(physics.disk_probe(SIZE, 14.0, curvature=3.0))


@pytest.fixture
def phase_objects(rng):
    """Four pure-phase objects with smooth phases of 1 rad rms."""
    phase = np.stack([gaussian_filter(rng.normal(size=(SIZE, SIZE)), 3) for _ in range(4)])
    return torch.from_numpy(np.exp(1j * phase / phase.std())).to(torch.complex64)


def _misfit(obj, probe, amplitudes):
    """Worst relative far-field amplitude error over the patterns."""
    error = (physics.far_field(probe * obj) - amplitudes).norm(dim=(-2, -1))
    return float((error / amplitudes.norm(dim=(-2, -1))).max())


def _agreement(estimate, truth, where):
    """Worst |<estimate, truth>| / (|estimate| |truth|) over the patterns on ``where``: 1 when
    they agree up to a constant phase (invisible to the far field)."""
    a, b = estimate[:, where], truth[:, where]
    return float(((a.conj() * b).sum(-1).abs() / (a.norm(dim=-1) * b.norm(dim=-1))).min())


def test_fourier_projection_imposes_the_amplitudes_and_keeps_the_phases(rng):
    waves = torch.from_numpy(rng.normal(size=(3, 16, 16)) + 1j * rng.normal(size=(3, 16, 16)))
    amplitudes = torch.from_numpy(rng.random((3, 16, 16)) + 0.1)
    projected = torch.fft.fft2(fourier_projection(waves, amplitudes), norm="ortho")
    before = torch.fft.fft2(waves, norm="ortho")
    torch.testing.assert_close(projected.abs(), amplitudes)
    torch.testing.assert_close(projected / projected.abs(), before / before.abs())


def test_object_projection_of_a_passive_exit_wave_is_the_regularised_quotient(probe, rng):
    support = centre_mask(SIZE)
    obj = torch.from_numpy(0.9 * np.exp(1j * rng.uniform(-3, 3, (2, SIZE, SIZE))))
    estimate = object_projection(probe * obj, probe_inverse(probe, support))
    power = probe.abs().square().double()
    expected = obj * power / (power + EPSILON) * support  # peak |P| is 1
    torch.testing.assert_close(estimate, expected.to(estimate.dtype), atol=1e-6, rtol=0)


def test_object_projection_is_passive_and_zero_off_the_support(probe, rng):
    support = centre_mask(SIZE)
    loud = torch.from_numpy(50 * (rng.normal(size=(2, SIZE, SIZE)) + 1j)).to(torch.complex64)
    estimate = object_projection(loud, probe_inverse(probe, support))
    assert float(estimate.abs().max()) <= 1 + 1e-6
    assert float(estimate[:, support == 0].abs().max()) == 0


def test_retrieval_recovers_phase_objects_from_their_far_field(probe, phase_objects):
    support = centre_mask(SIZE)
    amplitudes = physics.far_field(probe * phase_objects)
    lit = (probe.abs() > 0.5) & (support > 0)
    start = retrieve_patches(amplitudes, probe, support, 0)
    assert torch.equal(start, support.to(start.dtype).expand_as(start))
    assert _misfit(start, probe, amplitudes) > 0.4 and _agreement(start, phase_objects, lit) < 0.85

    relaxed = retrieve_patches(amplitudes, probe, support, 20, beta=0.8)
    reduced = retrieve_patches(amplitudes, probe, support, 20, beta=0.0)
    assert _misfit(relaxed, probe, amplitudes) < 0.06
    assert _agreement(relaxed, phase_objects, lit) > 0.98
    # error reduction stagnates where the relaxed reflections do not, and gets there later
    assert _agreement(reduced, phase_objects, lit) < 0.97
    longer = retrieve_patches(amplitudes, probe, support, 100, beta=0.0)
    assert _agreement(longer, phase_objects, lit) > 0.98


@pytest.mark.parametrize(("iterations", "beta"), [(-1, 0.8), (5, 1.5), (5, -0.1)])
def test_retrieval_refuses_bad_settings(probe, iterations, beta):
    amplitudes = torch.ones(1, SIZE, SIZE)
    with pytest.raises(ValueError, match="iterations|beta"):
        retrieve_patches(amplitudes, probe, centre_mask(SIZE), iterations, beta)
