import numpy as np
import pytest

from ptypinn.design import make_design


@pytest.fixture
def tiny_design():
    """A design small enough to simulate in well under a second (N=64, 128 px object)."""
    return make_design(
        {"name": "tiny", "patch_size": 64, "simulation": {"object_size": 128, "scan": {"step_px": 12.0, "jitter_px": 1.0}}}
    )


@pytest.fixture
def rng():
    return np.random.default_rng(0)
