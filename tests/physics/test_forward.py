import math

import numpy as np
import pytest
import torch

from ptypinn.physics import forward as physics
from ptypinn.physics.probes import disk_probe


def test_parseval_far_field_preserves_energy(rng):
    psi = torch.from_numpy(rng.normal(size=(5, 32, 32)) + 1j * rng.normal(size=(5, 32, 32)))
    amplitude = physics.far_field(psi)
    np.testing.assert_allclose(
        amplitude.pow(2).sum(dim=(-2, -1)), psi.abs().pow(2).sum(dim=(-2, -1)), rtol=1e-12
    )


def test_pure_phase_object_under_flat_probe_gives_a_single_bright_pixel():
    # O = exp(2 pi i (kx x + ky y) / N) is a plane wave: its far field is one pixel of amplitude N
    # at (N/2 + ky, N/2 + kx), zero elsewhere.
    size, kx, ky = 32, 3, -5
    yy, xx = np.mgrid[:96, :96]
    obj = torch.from_numpy(np.exp(2j * np.pi * (kx * xx + ky * yy) / size).astype(np.complex64))
    probe = torch.ones(size, size, dtype=torch.complex64)
    positions = torch.tensor([[40.0, 40.0], [51.0, 47.0]], dtype=torch.float64)
    amplitude = physics.far_field(physics.exit_waves(obj, probe, positions)).numpy()
    expected = np.zeros((size, size))
    expected[size // 2 + ky, size // 2 + kx] = size
    for pattern in amplitude:
        np.testing.assert_allclose(pattern, expected, atol=1e-3)


def test_integer_translation_equals_np_roll_on_the_interior(rng):
    image = rng.normal(size=(40, 50)) + 1j * rng.normal(size=(40, 50))
    shift = (3, -2)  # (x, y)
    moved = physics.translate(
        torch.from_numpy(image)[None], torch.tensor([shift], dtype=torch.float64)
    )[0].numpy()
    rolled = np.roll(image, shift=(shift[1], shift[0]), axis=(0, 1))
    interior = (slice(5, -5), slice(5, -5))
    np.testing.assert_allclose(moved[interior], rolled[interior], atol=1e-12)


def test_translation_moves_content_by_plus_t():
    image = torch.zeros(1, 20, 20, dtype=torch.float64)
    image[0, 5, 7] = 1.0  # row 5, column 7
    moved = physics.translate(image, torch.tensor([[4.0, 2.0]], dtype=torch.float64))[0]
    assert moved[7, 11] == 1.0 and moved.sum() == 1.0


def test_half_pixel_translation_interpolates_linearly():
    image = torch.arange(10, dtype=torch.float64).repeat(4, 1)[None]  # value = column index
    moved = physics.translate(image, torch.tensor([[0.5, 0.0]], dtype=torch.float64))[0]
    # out[x] = I(x - 0.5) = x - 0.5 wherever both neighbours are inside the image.
    np.testing.assert_allclose(
        moved[:, 1:].numpy(), np.tile(np.arange(1, 10) - 0.5, (4, 1)), atol=1e-12
    )


def _fraction(value: float) -> float:
    return value - math.floor(value)


@pytest.mark.parametrize("shift", [(0.5, 0.0), (0.3, -0.7), (1.25, 2.6), (0.5, 0.5)])
def test_subpixel_round_trip_of_a_plane_wave_is_the_analytic_attenuation(shift):
    # Moving by +u then -u (u fractional) applies, per axis, the kernel [u(1-u), 1-2u(1-u), u(1-u)],
    # whose response to exp(i k x) is 1 - 2u(1-u)(1 - cos k).
    kx, ky = 0.3, -0.5
    yy, xx = np.mgrid[:48, :48]
    wave = np.exp(1j * (kx * xx + ky * yy))
    t = torch.tensor([shift], dtype=torch.float64)
    back = physics.translate(physics.translate(torch.from_numpy(wave)[None], t), -t)[0].numpy()
    ux, uy = _fraction(shift[0]), _fraction(shift[1])
    gain = (1 - 2 * ux * (1 - ux) * (1 - math.cos(kx))) * (
        1 - 2 * uy * (1 - uy) * (1 - math.cos(ky))
    )
    interior = (slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(back[interior], gain * wave[interior], atol=1e-12)


@pytest.mark.parametrize("shift", [(0.5, 0.0), (0.3, -0.7), (1.25, 2.6), (0.5, 0.5)])
def test_subpixel_round_trip_error_is_within_the_smoothing_bound(shift):
    # The round-trip kernel has variance 2u(1-u) per axis, so for a smooth image the error is at
    # most sum_axes u(1-u) max|f''|; a Gaussian blob of width sigma has max|f''| = 1/sigma^2.
    sigma = 4.0
    yy, xx = np.mgrid[:48, :48]
    blob = np.exp(-((xx - 24.0) ** 2 + (yy - 23.0) ** 2) / (2 * sigma**2))
    t = torch.tensor([shift], dtype=torch.float64)
    back = physics.translate(physics.translate(torch.from_numpy(blob)[None], t), -t)[0].numpy()
    ux, uy = _fraction(shift[0]), _fraction(shift[1])
    bound = (ux * (1 - ux) + uy * (1 - uy)) / sigma**2
    assert np.abs(back - blob).max() <= 1.05 * bound


def test_extract_patches_at_integer_positions_is_slicing(rng):
    obj = rng.normal(size=(60, 70)) + 1j * rng.normal(size=(60, 70))
    patches = physics.extract_patches(
        torch.from_numpy(obj), torch.tensor([[20.0, 30.0], [45.0, 25.0]], dtype=torch.float64), 16
    ).numpy()
    np.testing.assert_allclose(patches[0], obj[30 - 8 : 30 + 8, 20 - 8 : 20 + 8], atol=1e-12)
    np.testing.assert_allclose(patches[1], obj[25 - 8 : 25 + 8, 45 - 8 : 45 + 8], atol=1e-12)


def test_subpixel_extraction_matches_translation_convention(rng):
    # Cutting at p + t equals cutting at p from the object moved by -t.
    obj = torch.from_numpy(rng.normal(size=(40, 40)))
    t = torch.tensor([[0.4, -0.3]], dtype=torch.float64)
    direct = physics.extract_patches(obj, torch.tensor([[20.0, 20.0]], dtype=torch.float64) + t, 8)
    via_translate = physics.extract_patches(
        physics.translate(obj[None], -t)[0], torch.tensor([[20.0, 20.0]], dtype=torch.float64), 8
    )
    np.testing.assert_allclose(direct.numpy(), via_translate.numpy(), atol=1e-12)


def test_dose_scale_sets_mean_photons():
    energies = np.array([2.0, 4.0, 6.0])
    scale = physics.dose_scale(energies, 1e4)
    assert scale**2 * energies.mean() == pytest.approx(1e4)
    with pytest.raises(ValueError, match="positive"):
        physics.dose_scale(energies, 0)


def test_raster_scan_stays_inside_and_keeps_its_step(rng):
    positions = physics.raster_scan((100, 120), 32, step=10, jitter=0.0)
    assert positions[:, 0].min() >= 16 and positions[:, 0].max() <= 120 - 17
    assert positions[:, 1].min() >= 16 and positions[:, 1].max() <= 100 - 17
    np.testing.assert_allclose(np.diff(np.unique(positions[:, 0])), 10)
    jittered = physics.raster_scan((100, 120), 32, step=10, jitter=1.5, rng=rng)
    assert np.abs(jittered - positions).max() <= 1.5


def test_fermat_scan_has_hexagonal_density():
    step = 8.0
    positions = physics.fermat_scan((400, 400), 64, step)
    x_lo, x_hi, y_lo, y_hi = physics.scan_bounds((400, 400), 64)
    hex_cell = math.sqrt(3) / 2 * step**2
    assert positions.shape[0] == pytest.approx((x_hi - x_lo) * (y_hi - y_lo) / hex_cell, rel=0.05)


def test_scan_refuses_an_object_smaller_than_a_patch():
    with pytest.raises(ValueError, match="too small"):
        physics.raster_scan((20, 20), 32, step=4)


@pytest.mark.parametrize("curvature", [0.0, 3.0])
def test_probe_backpropagation_of_an_empty_object_is_the_probe_intensity(curvature):
    probe = torch.from_numpy(disk_probe(32, 16.0, curvature=curvature))
    amplitudes = physics.far_field(probe[None].repeat(2, 1, 1))  # object of ones, twice
    estimate = physics.probe_backpropagation(amplitudes, probe)
    expected = probe.abs().square() / probe.abs().max()
    assert estimate.shape == (2, 32, 32)
    torch.testing.assert_close(
        estimate, expected.to(estimate.dtype).expand(2, 32, 32), atol=1e-5, rtol=0
    )
