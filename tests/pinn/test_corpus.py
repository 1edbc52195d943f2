import numpy as np
import pytest
import torch

from ptypinn.physics.forward import extract_patches
from ptypinn.physics.probes import disk_probe
from ptypinn.pinn.config import CorpusConfig
from ptypinn.pinn.corpus import corpus_datasets


@pytest.fixture(scope="module")
def corpus():
    config = CorpusConfig(kinds=("grf", "lines"), objects=3, object_size=96, step_px=6.0)
    probe = disk_probe(32, 16.0)
    return config, probe, corpus_datasets(config, probe, dose_scale=40.0)


def test_one_scanned_dataset_per_object_with_the_kinds_in_turn(corpus):
    config, probe, datasets = corpus
    assert [d.metadata["corpus_kind"] for d in datasets] == ["grf", "lines", "grf"]
    for dataset in datasets:
        # a raster over the 96 px object: every position keeps its 32 px patch inside
        assert dataset.count == len(np.arange(16, 96 - 16, 6.0)) ** 2
        assert dataset.positions.min() >= 16 - 1 and dataset.positions.max() <= 96 - 17 + 1e-9
        np.testing.assert_array_equal(dataset.probe, probe)


def test_corpus_patterns_carry_the_photons_of_the_beam(corpus):
    """Parseval: the mean counts of a pattern are s^2 * sum |P O|^2 over its exit wave."""
    _, probe, datasets = corpus
    for dataset in datasets:
        patches = extract_patches(
            torch.from_numpy(dataset.obj), torch.from_numpy(dataset.positions), 32
        ).numpy()
        expected = 40.0**2 * (np.abs(probe * patches) ** 2).sum(axis=(1, 2))
        counts = ((40.0 * dataset.diffraction.astype(np.float64)) ** 2).sum(axis=(1, 2))
        np.testing.assert_allclose(counts.mean(), expected.mean(), rtol=0.01)
        # Poisson counts are whole numbers
        whole = (40.0 * dataset.diffraction.astype(np.float64)) ** 2
        np.testing.assert_allclose(whole, np.rint(whole), atol=1e-2)


def test_the_corpus_follows_its_seed(corpus):
    config, probe, datasets = corpus
    again = corpus_datasets(config, probe, dose_scale=40.0)
    other = corpus_datasets(config.model_copy(update={"seed": 1}), probe, dose_scale=40.0)
    np.testing.assert_array_equal(datasets[1].diffraction, again[1].diffraction)
    assert not np.allclose(datasets[1].obj, other[1].obj)
