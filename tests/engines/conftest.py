import numpy as np
import pytest

from ptypinn.engines.api import ENGINE_OPTIONS
from ptypinn.io.reconstruction import ReconstructionInput
from ptypinn.physics.forward import raster_scan
from ptypinn.physics.geometry import default_geometry
from ptypinn.physics.probes import disk_probe
from ptypinn.physics.samples import default_object
from ptypinn.study.simulate import SimulationSource, clean_amplitudes

from helpers import ENGINE_BUDGET as BUDGET


def simulate(size=32, object_size=80, step=6.0, jitter=0.0):
    """Noiseless input and its truth: default object, apodised disk probe (N/2 across), raster."""
    obj = default_object(object_size)
    probe = disk_probe(size, size / 2, edge=1.0, curvature=3.0)
    positions = raster_scan(obj.shape, size, step, jitter=jitter, rng=np.random.default_rng(1))
    amplitudes = clean_amplitudes(SimulationSource(obj, probe), positions)
    return ReconstructionInput(amplitudes, positions, probe, obj.shape, default_geometry(size)), obj


@pytest.fixture
def simulated_input():
    """``simulated_input(size=32, object_size=80, step=6.0, jitter=0.0)`` -> (input, truth)."""
    return simulate


@pytest.fixture(scope="session")
def noiseless():
    """The reconstruction test case: a jittered noiseless scan, 64 patterns of 32 x 32."""
    return simulate(jitter=1.0)


@pytest.fixture(scope="session")
def reconstructions(noiseless):
    """Both engines' reconstructions of the noiseless test case, same budget and batch size."""
    from ptypinn.engines.registry import iterative_reconstructor

    inp, _ = noiseless
    return {
        engine: iterative_reconstructor(engine, kind(iterations=BUDGET)).reconstruct(inp)
        for engine, kind in ENGINE_OPTIONS.items()
    }
