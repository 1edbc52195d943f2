import json
import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist
from typer.testing import CliRunner

from ptypinn.io.artifacts import file_record, sha256_file, write_json
from ptypinn.cli import app
from ptypinn.io.dataset import DatasetError, PtychoDataset, load_dataset, save_dataset
from ptypinn.study.design import DesignError, preset
from ptypinn.study.layout import split_path
from ptypinn.study.overlap import disc_overlap_fraction, measure_overlap, probe_footprint, run_overlap, select_min_spacing
from ptypinn.physics.forward import gaussian_probe, raster_scan
from ptypinn.study.simulate import run_simulation


def top_hat(size, radius):
    yy, xx = np.mgrid[:size, :size] - size // 2
    return (np.hypot(xx, yy) <= radius).astype(np.complex64)


# --------------------------------------------------------------------------------------------
# Disc overlap


def test_disc_overlap_fraction_at_known_distances():
    diameter = 40.0
    radius = diameter / 2
    # Two discs a radius apart: the lens is two circular segments whose chord lies R/2 from each centre.
    h = radius / 2
    segment = radius**2 * math.acos(h / radius) - h * math.sqrt(radius**2 - h**2)
    expected = 2 * segment / (math.pi * radius**2)
    values = disc_overlap_fraction(np.array([0.0, radius, diameter, 1.5 * diameter]), diameter)
    np.testing.assert_allclose(values, [1.0, expected, 0.0, 0.0], atol=1e-12)
    assert expected == pytest.approx(0.391, abs=5e-4)
    assert np.all(np.diff(disc_overlap_fraction(np.linspace(0, diameter, 50), diameter)) < 0)


def test_disc_overlap_fraction_matches_counted_pixels():
    yy, xx = np.mgrid[-300:400, -300:300] + 0.5
    first, second = np.hypot(xx, yy) < 200, np.hypot(xx, yy - 130) < 200
    assert disc_overlap_fraction(130.0, 400.0) == pytest.approx((first & second).sum() / first.sum(), abs=2e-3)


# --------------------------------------------------------------------------------------------
# Minimum-spacing selection


def test_selection_keeps_only_well_spaced_positions_and_is_maximal(rng):
    positions = rng.uniform(0, 300, size=(800, 2))
    kept = select_min_spacing(positions, 25.0, seed=456)
    assert np.all(np.diff(kept) > 0)
    assert pdist(positions[kept]).min() >= 25.0
    rejected = np.setdiff1d(np.arange(800), kept)
    # Greedy: every rejected position was blocked by a kept one.
    assert np.all(cdist(positions[rejected], positions[kept]).min(axis=1) < 25.0)
    assert select_min_spacing(positions, 25.0, seed=456).tobytes() == kept.tobytes()
    assert not np.array_equal(select_min_spacing(positions, 25.0, seed=457), kept)


def test_selection_spacing_is_inclusive_and_zero_keeps_all():
    grid = raster_scan((200, 200), 64, step=10.0)
    np.testing.assert_array_equal(select_min_spacing(grid, 10.0, seed=1), np.arange(len(grid)))
    np.testing.assert_array_equal(select_min_spacing(grid, 0.0, seed=1), np.arange(len(grid)))
    kept = select_min_spacing(grid, 10.5, seed=1)
    assert 0 < len(kept) < len(grid) and pdist(grid[kept]).min() >= 10.5


# --------------------------------------------------------------------------------------------
# Footprint, overlap and coverage


def test_probe_footprint_of_a_top_hat_and_a_gaussian():
    mask, diameter = probe_footprint(top_hat(64, 12))
    assert mask.sum() == np.count_nonzero(np.abs(top_hat(64, 12)))
    assert diameter == pytest.approx(24.0, abs=0.5)
    # Gaussian amplitude with FWHM w: intensity exp(-r^2 / sigma^2) drops to 1/e^2 at r = sqrt(2) sigma.
    sigma = 10 / (2 * math.sqrt(2 * math.log(2)))
    assert probe_footprint(gaussian_probe(64, 10.0))[1] == pytest.approx(2 * math.sqrt(2) * sigma, abs=0.3)
    with pytest.raises(ValueError, match="zero everywhere"):
        probe_footprint(np.zeros((8, 8)))


def test_overlap_of_two_positions_is_the_disc_formula():
    probe = top_hat(64, 12)
    diameter = probe_footprint(probe)[1]
    result = measure_overlap(np.array([[50.0, 60.0], [60.0, 60.0]]), probe, (128, 128), 7, 0.5)
    assert result["measured_fraction"] == pytest.approx(float(disc_overlap_fraction(10.0, diameter)))
    assert result["nearest_fraction"] == result["measured_fraction"]
    assert result["mean_nn_spacing_px"] == pytest.approx(10.0)
    assert result["count"] == 2 and result["target_fraction"] == 0.5
    json.dumps(result, allow_nan=False)


def test_coverage_of_known_layouts():
    probe = top_hat(64, 12)
    area = int(np.count_nonzero(np.abs(probe)))
    one = np.array([[64.0, 64.0]])
    # Default region: the footprint's own bounding box (25 x 25 px).
    assert measure_overlap(one, probe, (128, 128), 7, None)["coverage"] == pytest.approx(area / 25**2)
    box = (32, 96, 32, 96)
    assert measure_overlap(one, probe, (128, 128), 7, None, field_of_view=box)["coverage"] == pytest.approx(area / 64**2)
    apart = np.array([[45.0, 64.0], [83.0, 64.0]])
    assert measure_overlap(apart, probe, (128, 128), 7, None, field_of_view=box)["coverage"] == pytest.approx(2 * area / 64**2)
    same = np.array([[64.0, 64.0], [64.2, 63.9]])
    assert measure_overlap(same, probe, (128, 128), 7, None, field_of_view=box)["coverage"] == pytest.approx(area / 64**2)
    # At x = 0 only the footprint's right half (mask columns >= 32) lies on the object, and the
    # region is clipped to the object's columns 0..12 of the footprint's 25-row box.
    edge = measure_overlap(np.array([[0.0, 64.0]]), probe, (128, 128), 7, None)
    assert edge["coverage"] == pytest.approx(np.count_nonzero(np.abs(probe)[:, 32:]) / (25 * 13))
    single = measure_overlap(one, probe, (128, 128), 7, 0.2)
    assert single["measured_fraction"] is None and single["mean_nn_spacing_px"] is None


# --------------------------------------------------------------------------------------------
# Phase D end to end


@pytest.fixture
def phase_c(tiny_design, tmp_path):
    root = tmp_path / "c"
    run_simulation(tiny_design, root, doses=[1000])
    return root


def test_run_overlap_writes_views_provenance_and_metrics(tiny_design, phase_c, tmp_path):
    out = tmp_path / "d"
    stale = split_path(out, 1000, "train", "sparse")
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left over")
    manifest = run_overlap(tiny_design, phase_c, out)

    source = load_dataset(split_path(phase_c, 1000, "train"))
    dense = load_dataset(split_path(out, 1000, "train", "dense"))
    assert dense.count >= 4
    assert pdist(dense.positions).min() >= tiny_design.spacing("dense")
    assert set(map(tuple, dense.positions)) <= set(map(tuple, source.positions))
    assert dense.metadata["view"] == "dense" and dense.metadata["target_fraction"] == 0.7
    assert dense.metadata["positions_kept"] + dense.metadata["positions_rejected"] == source.count
    assert dense.metadata["overlap_source"] == {"path": "dose_1000/train.npz", "sha256": sha256_file(split_path(phase_c, 1000, "train"))}
    dense_entry = manifest["doses"][0]["views"][0]
    assert dense_entry["formed"] and dense_entry["files"]["test"] == file_record(split_path(out, 1000, "test", "dense"), out)

    # The tiny scan is too small for the sparse view: nothing written, both splits reported.
    assert not stale.parent.exists()
    assert [(e["view"], e["split"]) for e in manifest["not_formed"]] == [("sparse", "train"), ("sparse", "test")]
    assert all(e["dose"] == 1000.0 and e["count"] < 4 and "fewer than the minimum 4" in e["reason"] for e in manifest["not_formed"])

    metrics = json.loads((out / "metrics.json").read_text())
    assert [(m["view"], m["split"]) for m in metrics] == [("baseline", "train"), ("baseline", "test"), ("dense", "train"), ("dense", "test")]
    required = {"dose", "view", "split", "target_fraction", "measured_fraction", "mean_nn_spacing_px", "coverage", "probe_diameter_px", "count"}
    assert all(required <= set(m) for m in metrics)
    baseline, view = metrics[0], metrics[2]
    assert baseline["count"] == source.count and view["count"] == dense.count
    assert view["measured_fraction"] < baseline["measured_fraction"] and view["coverage"] <= baseline["coverage"]
    assert json.loads((out / "overlap_manifest.json").read_text()) == manifest


def test_run_overlap_is_byte_reproducible(tiny_design, phase_c, tmp_path):
    for name in ("d1", "d2"):
        run_overlap(tiny_design, phase_c, tmp_path / name)
    files = sorted(p.relative_to(tmp_path / "d1") for p in (tmp_path / "d1").rglob("*") if p.is_file())
    assert len(files) == 4
    assert all((tmp_path / "d1" / f).read_bytes() == (tmp_path / "d2" / f).read_bytes() for f in files)


def test_a_view_short_in_one_split_is_written_in_neither(tiny_design, tmp_path):
    """Train has a wide scan, test only two positions: the dense view must not be half-written."""
    probe = top_hat(64, 16)
    obj = np.ones((256, 256), np.complex64)
    root = tmp_path / "c"
    files = {}
    for split, positions in (("train", raster_scan((128, 256), 64, 12.0)), ("test", np.array([[40.0, 200.0], [200.0, 200.0]]))):
        dataset = PtychoDataset(
            diffraction=np.ones((len(positions), 64, 64), np.float32),
            xcoords=positions[:, 0].copy(), ycoords=positions[:, 1].copy(), probe=probe, obj=obj,
        )
        files[split] = file_record(save_dataset(split_path(root, 500, split), dataset), root)
    write_json(root / "simulation_manifest.json", {"doses": [{"dose": 500.0, "files": files}]})
    manifest = run_overlap(tiny_design, root, tmp_path / "d", views=["dense"])
    assert not (tmp_path / "d" / "dose_500").exists()
    train, test = manifest["not_formed"]
    assert train["split"] == "train" and train["count"] >= 4 and "test split" in train["reason"]
    assert test["split"] == "test" and test["count"] == 2


def test_run_overlap_refuses_bad_inputs(tiny_design, phase_c, tmp_path):
    with pytest.raises(DatasetError, match="run `ptypinn simulate` first"):
        run_overlap(tiny_design, tmp_path / "nowhere", tmp_path / "d")
    broken = tmp_path / "broken"
    write_json(broken / "simulation_manifest.json", {"doses": [{"dose": 1000.0, "files": {"train": {}}}]})
    with pytest.raises(DatasetError, match="not a readable phase C manifest"):
        run_overlap(tiny_design, broken, tmp_path / "d")
    with pytest.raises(DatasetError, match=r"dose\(s\) \[2000.0\] not in"):
        run_overlap(tiny_design, phase_c, tmp_path / "d", doses=[2000.0])
    with pytest.raises(DesignError, match="unknown view"):
        run_overlap(tiny_design, phase_c, tmp_path / "d", views=["medium"])
    with pytest.raises(DesignError, match="N=128"):
        run_overlap(preset("full"), phase_c, tmp_path / "d")


def test_cli_overlap_reports_views_and_fails_on_a_missing_one(tiny_design, phase_c, tmp_path):
    config = tiny_design.save(tmp_path / "design.yaml")
    out = tmp_path / "d"
    result = CliRunner().invoke(app, ["overlap", "--config", str(config), "--phase-c-root", str(phase_c), "--output-root", str(out)])
    assert result.exit_code == 1, result.output
    assert "dose 1000 dense (S = 19.2 px): kept" in result.output and "overlap target 0.7, measured" in result.output
    assert "not formed: dose 1000 view 'sparse' train" in result.output
    assert split_path(out, 1000, "test", "dense").is_file() and (out / "metrics.json").is_file()

    result = CliRunner().invoke(app, ["overlap", "--config", str(config), "--phase-c-root", str(phase_c), "--output-root", str(out), "--view", "dense", "--dose", "1000"])
    assert result.exit_code == 0, result.output
    assert "sparse" not in result.output


def test_a_run_for_one_dose_removes_the_views_of_other_doses(tiny_design, tmp_path):
    phase_c = tmp_path / "c"
    run_simulation(tiny_design, phase_c, doses=[1000, 2000])
    out = tmp_path / "d"
    run_overlap(tiny_design, phase_c, out, views=["dense"])
    assert split_path(out, 2000, "train", "dense").is_file()
    manifest = run_overlap(tiny_design, phase_c, out, doses=[1000], views=["dense"])
    assert [entry["dose"] for entry in manifest["doses"]] == [1000.0]
    assert not (out / "dose_2000").exists() and split_path(out, 1000, "train", "dense").is_file()
