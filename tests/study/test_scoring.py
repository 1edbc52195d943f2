import dataclasses
import json

import numpy as np
import pytest

from ptypinn.io.artifacts import write_npz
from ptypinn.io.dataset import metadata_entry, save_dataset
from ptypinn.io.hdf5 import FormatError
from ptypinn.io.product import product_from_arrays, write_product
from ptypinn.io.reconstruction import Snapshot
from ptypinn.physics.geometry import dataset_geometry
from ptypinn.study.compare import scored_region
from ptypinn.study.design import MetricsConfig
from ptypinn.study.scoring import on_truth_grid, quality_curve, score_file, score_object


def reconstruction_arrays(dataset, obj):
    return {
        "objectGuess": obj.astype(np.complex64),
        "probeGuess": dataset.probe,
        "xcoords": dataset.xcoords,
        "ycoords": dataset.ycoords,
        "metadata": metadata_entry({"producer": "test"}),
    }


def test_a_product_on_another_grid_lands_on_the_truth_pixels(small_dataset):
    """A ptychodus-style product whose object grid is a crop of the truth's, placed by its
    centre."""
    truth = small_dataset
    geometry = dataset_geometry(truth.metadata, truth.patch_size)
    crop = truth.obj[4:60, 6:70]
    height, width = crop.shape
    product = dataclasses.replace(
        product_from_arrays(reconstruction_arrays(truth, truth.obj)),
        obj=crop,
        object_center_m=tuple(
            geometry.to_metres(np.array([[6 + (width - 1) / 2, 4 + (height - 1) / 2]]))[0]
        ),
    )
    placed = on_truth_grid(product, truth)
    np.testing.assert_array_equal(placed[4:60, 6:70], crop)
    assert not placed[:4].any() and not placed[:, :6].any() and not placed[60:].any()
    smaller = dataclasses.replace(product, pixel_size_m=tuple(p / 2 for p in product.pixel_size_m))
    with pytest.raises(FormatError, match="resample"):
        on_truth_grid(smaller, truth)


def test_an_npz_and_its_product_score_the_same(small_dataset, tmp_path):
    truth = small_dataset
    save_dataset(tmp_path / "truth.npz", truth)
    moved = truth.obj.copy()
    moved[:, 1:] = truth.obj[:, :-1]  # content one pixel to the right, nothing wrapped
    arrays = reconstruction_arrays(truth, 0.9 * np.exp(0.3j) * moved)
    write_npz(tmp_path / "recon.npz", arrays)
    write_product(tmp_path / "recon.h5", product_from_arrays(arrays))
    metrics = MetricsConfig()
    results = [
        score_file(tmp_path / name, tmp_path / "truth.npz", metrics)
        for name in ("recon.npz", "recon.h5")
    ]
    for result in results:
        alignment = result["alignment"]
        assert (
            alignment["shift_x_px"] == pytest.approx(-1.0, abs=1e-3)
            and abs(alignment["shift_y_px"]) < 1e-3
        )
        assert alignment["gain_amplitude"] == pytest.approx(1 / 0.9, rel=1e-3)
        assert not alignment["bound_hit"]
        assert (
            result["scores"]["phase"]["ssim"] > 0.99
            and result["scores"]["amplitude"]["ssim"] > 0.99
        )
        assert result["region"]["illuminated_px"] == int(scored_region(truth).sum())
        json.dumps(result, allow_nan=False)  # plain JSON
    assert results[0]["scores"]["phase"]["ssim"] == pytest.approx(
        results[1]["scores"]["phase"]["ssim"], abs=1e-6
    )


def test_a_runs_curve_scores_each_object_as_the_scorer_does_and_adds_the_offset(
    small_dataset,
):
    """Every kept object is scored as the scorer scores a final one: the final object's point
    equals the full score; an earlier object off by a constant complex factor (what the
    alignment's gain removes) scores the same; a flat start scores far lower; seconds carry the
    offset, in iteration order."""
    truth = small_dataset
    rng = np.random.default_rng(3)
    final = truth.obj * np.exp(1j * 0.05 * rng.normal(size=truth.obj.shape))
    metrics = MetricsConfig()
    snapshots = [
        Snapshot(5, 2.0, (0.5 - 0.3j) * final),
        Snapshot(0, 0.0, np.ones_like(final)),
        Snapshot(9, 3.5, final),
    ]
    curve = quality_curve(snapshots, truth, metrics, offset=10.0)
    assert [p.iteration for p in curve] == [0, 5, 9]
    assert [p.seconds for p in curve] == [10.0, 12.0, 13.5]
    full = score_object(final, truth, metrics)["scores"]["phase"]["ssim"]
    assert curve[2].phase_ssim == pytest.approx(full, abs=1e-12)
    assert curve[1].phase_ssim == pytest.approx(full, abs=1e-9)
    assert curve[0].phase_ssim < full - 0.5
    assert quality_curve([], truth, metrics) == []
