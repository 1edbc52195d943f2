import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import j0, j1

from ptypinn.physics import probes
from ptypinn.physics.forward import far_field
from ptypinn.physics.scan import probe_footprint


def test_disk_probe_has_the_requested_diameter():
    probe = probes.disk_probe(128, diameter=60, edge=2.0, curvature=2.0)
    # The erfc edge crosses half amplitude at the rim, so the half-max area is pi (D/2)^2.
    area = np.count_nonzero(np.abs(probe) > 0.5)
    assert area == pytest.approx(math.pi * 30**2, rel=0.03)
    assert probe.dtype == np.complex64 and np.abs(probe).max() == pytest.approx(1.0)
    # Defocus phase: curvature radians at the rim relative to the centre.
    assert np.angle(probe[64, 64 + 30] / probe[64, 64]) == pytest.approx(2.0, abs=1e-5)


def test_gaussian_probe_is_half_maximum_at_half_fwhm():
    probe = probes.gaussian_probe(64, fwhm=20)
    assert abs(probe[32, 32 + 10]) == pytest.approx(0.5, rel=1e-5)


def test_airy_probe_is_dark_at_its_first_zero():
    probe = probes.airy_probe(128, first_zero_radius=20)
    assert abs(probe[64, 64 + 20]) < 1e-6
    assert abs(probe[64, 64 + 10]) > 0.3


def _fresnel_integral(radii, outer, stop, lambda_z):
    """|U(r)| of an annulus in spatial frequency (radii ``stop*outer`` to ``outer``, cycles/px)
    propagated ``lambda z`` past its focus, as the direct Fresnel (Hankel) integral
    ``2 pi int rho exp(-i pi lambda z rho^2) J0(2 pi rho r) d rho``."""

    def part(r, fn):
        return quad(
            lambda rho: fn(-math.pi * lambda_z * rho**2) * j0(2 * math.pi * rho * r) * rho,
            stop * outer,
            outer,
            limit=400,
        )[0]

    return np.array([abs(complex(part(r, np.cos), part(r, np.sin))) for r in radii])


@pytest.mark.parametrize("beam_diameter", [0.0, 48.0])
def test_zone_plate_rings_sit_where_fresnel_propagation_puts_them(beam_diameter):
    size, pupil_fraction, stop = 128, 0.25, 0.3
    probe = probes.zone_plate_probe(size, beam_diameter, pupil_fraction, stop)
    outer = pupil_fraction / 2
    # beam diameter = 2 lambda z rho_o, so lambda z = D / (2 rho_o)
    radii = np.arange(40)
    expected = _fresnel_integral(radii, outer, stop, beam_diameter / (2 * outer))
    expected /= expected.max()
    measured = np.abs(probe[size // 2, size // 2 : size // 2 + 40])
    measured /= measured.max()
    np.testing.assert_allclose(measured, expected, atol=0.04)

    # every dark ring (a local minimum) of the integral is one of the model's, within a pixel
    def minima(profile):
        return {r for r in radii[1:-1] if profile[r] < min(profile[r - 1], profile[r + 1])}

    found = minima(measured)
    assert minima(expected) and all({r - 1, r, r + 1} & found for r in minima(expected))


def test_zone_plate_in_focus_is_the_airy_pattern_of_an_annulus():
    # U(v) = 2 J1(v)/v - e^2 2 J1(e v)/(e v), v = 2 pi rho_o r: first zero from the formula.
    size, pupil_fraction, stop = 128, 0.125, 0.4
    rho_o = pupil_fraction / 2

    def field(r):
        v = 2 * math.pi * rho_o * r
        return 2 * j1(v) / v - stop**2 * 2 * j1(stop * v) / (stop * v)

    first_zero = brentq(field, 1.0, 0.61 / rho_o * 1.2)
    assert first_zero < 0.61 / rho_o  # a central stop pulls the first dark ring in
    probe = probes.zone_plate_probe(size, 0.0, pupil_fraction, stop)
    row = np.abs(probe[size // 2, size // 2 :])
    dark = int(np.argmin(row[: int(first_zero) + 3]))
    assert abs(dark - first_zero) < 1.0
    assert row[0] == pytest.approx(1.0)


def test_zone_plate_conserves_energy_and_its_far_field_is_the_pupil():
    size, pupil_fraction, stop = 64, 0.5, 0.3
    rho = np.hypot(*np.meshgrid(np.arange(size) - 32, np.arange(size) - 32)) / size
    annulus = (rho <= pupil_fraction / 2) & (rho >= stop * pupil_fraction / 2)
    energies = []
    for diameter in (0.0, 16.0, 32.0, 48.0):
        probe = probes.zone_plate_probe(size, diameter, pupil_fraction, stop)
        assert probe.dtype == np.complex64 and np.abs(probe).max() == pytest.approx(1.0)
        far = far_field(torch.from_numpy(probe)).numpy().astype(np.float64)
        energy = float(np.sum(np.abs(probe.astype(np.complex128)) ** 2))
        assert float(np.sum(far**2)) == pytest.approx(energy, rel=1e-5)  # Parseval
        # the far field is the pupil: flat on the annulus, dark elsewhere
        assert far[~annulus].max() < 1e-5 * far.max()
        np.testing.assert_allclose(far[annulus], far[annulus].mean(), rtol=1e-4)
        # propagation is unitary: the pupil's energy, whatever the defocus
        energies.append(energy / far[annulus].mean() ** 2)
    np.testing.assert_allclose(energies, annulus.sum(), rtol=1e-4)


def test_zone_plate_default_footprint_is_about_half_the_window():
    for size in (64, 128):
        probe = probes.zone_plate_probe(size, size / 2)
        mask, diameter = probe_footprint(probe)
        assert 0.35 * size < diameter < 0.6 * size
        rows, cols = np.nonzero(mask)
        assert rows.min() > size / 8 and rows.max() < size * 7 / 8
        assert cols.min() > size / 8 and cols.max() < size * 7 / 8


def test_zone_plate_refuses_a_beam_wider_than_the_grid():
    with pytest.raises(ValueError, match="beam diameter"):
        probes.zone_plate_probe(64, 64.0)


def test_diffuser_is_reproducible_from_its_seed_and_has_the_requested_rms():
    base = probes.disk_probe(64, 32.0)
    one = probes.diffuser_probe(base, correlation_px=4.0, rms_phase=1.0, seed=7)
    np.testing.assert_array_equal(one, probes.diffuser_probe(base, 4.0, 1.0, seed=7))
    assert not np.array_equal(one, probes.diffuser_probe(base, 4.0, 1.0, seed=8))
    np.testing.assert_allclose(np.abs(one), np.abs(base), rtol=1e-6, atol=1e-7)  # phase only
    screen = probes.phase_screen(64, 4.0, 1.0, seed=7)
    lit = np.abs(base) > 1e-3
    np.testing.assert_allclose(
        np.angle(one * np.conj(base))[lit], np.angle(np.exp(1j * screen))[lit], atol=1e-4
    )
    assert np.sqrt(np.mean(screen**2)) == pytest.approx(1.0, rel=1e-12)
    assert probes.phase_screen(64, 4.0, 0.3, seed=7) == pytest.approx(0.3 * screen, abs=1e-12)


def test_phase_screen_correlation_is_one_over_e_at_its_length():
    length, size = 6.0, 256
    correlations = []
    for seed in range(4):
        screen = probes.phase_screen(size, length, 1.0, seed)
        spectrum = np.fft.fft2(screen)
        auto = np.fft.ifft2(np.abs(spectrum) ** 2).real / screen.size  # periodic autocorrelation
        correlations.append((auto[0, int(length)] + auto[int(length), 0]) / 2 / auto[0, 0])
    assert np.mean(correlations) == pytest.approx(math.exp(-1), abs=0.06)
