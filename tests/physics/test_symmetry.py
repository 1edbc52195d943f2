import numpy as np
import pytest
import torch

from ptypinn.physics.forward import far_field
from ptypinn.physics.probes import disk_probe
from ptypinn.physics.symmetry import probe_symmetries, symmetry


@pytest.mark.parametrize("code", range(8))
def test_symmetries_map_far_fields_to_far_fields(code):
    """The diffraction of the transformed exit wave is the transformed diffraction (radial
    probe)."""
    rng = np.random.default_rng(code)
    probe = torch.from_numpy(disk_probe(64, 28, curvature=3.0))
    patch = torch.from_numpy(
        (rng.random((64, 64)) * np.exp(1j * rng.normal(size=(64, 64)))).astype(np.complex64)
    )
    transformed, offsets = symmetry(patch, torch.tensor([3.0, -2.0]), code)
    expected, _ = symmetry(far_field(probe * patch), torch.zeros(2), code)
    torch.testing.assert_close(far_field(probe * transformed), expected, atol=1e-4, rtol=1e-4)
    assert torch.equal(offsets.abs().sort().values, torch.tensor([2.0, 3.0]))


def test_a_probe_keeps_only_the_symmetries_that_leave_it_unchanged():
    """A centred disk has all 8; moved along y it keeps only the identity and the x mirror; moved
    along both axes (or a random phase on it), only the identity."""
    yy, xx = np.indices((64, 64)) - 32
    disk = (np.hypot(xx, yy) < 12).astype(np.complex64)
    assert probe_symmetries(disk) == tuple(range(8))
    assert probe_symmetries(np.roll(disk, 3, axis=0)) == (0, 1)
    assert probe_symmetries(np.roll(disk, (3, 5), axis=(0, 1))) == (0,)
