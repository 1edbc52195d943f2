import math

import numpy as np
import pytest

from ptypinn.physics import probes


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
