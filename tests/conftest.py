from pathlib import Path

import numpy as np
import pytest

from ptypinn.study.design import make_design
from ptypinn.study.layout import SPLITS

from helpers import record_phases

# The study's two views with the original study's spacing rule, for tiny scans.
PATCH_LINEAR_VIEWS = [
    {"name": "dense", "fraction": 0.7, "rule": "patch_linear"},
    {"name": "sparse", "fraction": 0.2, "rule": "patch_linear"},
]


@pytest.fixture(scope="session")
def patch_linear_views():
    """Views for scans too coarse for the default disc_overlap spacings (below 7.84 px at N=64)."""
    return PATCH_LINEAR_VIEWS


@pytest.fixture
def tiny_design():
    """A design small enough to simulate in well under a second (N=64, 128 px object).

    Its scan is too coarse for the default disc_overlap spacings, so its views use the
    original study's spacing S = (1 - f) N (19.2 px dense, 51.2 px sparse). Its split has no guard
    band: on a 128 px object the band would leave too few positions to form the overlap views these
    tests use (the guard band has its own tests). Its probe is the disk N/2 across (footprint
    D = 33.0 px), the numbers these tests state; the other probes have their own tests.
    """
    simulation = {
        "object_size": 128,
        "scan": {"step_px": 12.0, "jitter_px": 1.0},
        "guard_band": False,
        "probe": {"kind": "disk"},
    }
    return make_design(
        {"name": "tiny", "patch_size": 64, "simulation": simulation, "views": PATCH_LINEAR_VIEWS}
    )


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def small_dataset():
    """A 32x32-pattern dataset with an object, noisy at 1e4 photons, built straight from the
    physics."""
    import torch

    from ptypinn.io.dataset import PtychoDataset
    from ptypinn.physics.forward import (
        dose_scale,
        exit_waves,
        far_field,
        poisson_observe,
        raster_scan,
    )
    from ptypinn.physics.probes import disk_probe

    rng = np.random.default_rng(1)
    size, shape = 32, (72, 80)
    obj = (rng.uniform(0.5, 1.0, shape) * np.exp(1j * rng.uniform(-1, 1, shape))).astype(
        np.complex64
    )
    probe = disk_probe(size, 16)
    positions = raster_scan(shape, size, 9.0, jitter=1.0, rng=rng)
    with torch.no_grad():
        clean = far_field(
            exit_waves(torch.from_numpy(obj), torch.from_numpy(probe), torch.from_numpy(positions))
        ).numpy()
    scale = dose_scale(np.sum(clean.astype(np.float64) ** 2, axis=(1, 2)), 1e4)
    return PtychoDataset(
        diffraction=poisson_observe(clean, scale, rng),
        xcoords=positions[:, 0].copy(),
        ycoords=positions[:, 1].copy(),
        probe=probe,
        obj=obj,
        scan_index=np.zeros(len(positions), dtype=np.int64),
        metadata={"nphotons": 1e4, "dose_scale": scale, "producer": "conftest"},
    )


@pytest.fixture
def fake_phases(tmp_path):
    """``make(doses, views)``: phase C and D folders of placeholder split files (not datasets)
    with the manifests that list them, as `simulate` and `overlap` write them."""

    def make(doses=(1000, 10000, 100000), views=("dense", "sparse")) -> tuple[Path, Path]:
        phase_c, phase_d = tmp_path / "c", tmp_path / "d"
        for dose in doses:
            for split in SPLITS:
                for root, folder in (
                    (phase_c, f"dose_{dose}"),
                    *((phase_d, f"dose_{dose}/{view}") for view in views),
                ):
                    path = root / folder / f"{split}.npz"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(f"{folder}/{split}".encode())  # distinct bytes per file
        record_phases(phase_c, phase_d, doses, views)
        return phase_c, phase_d

    return make
