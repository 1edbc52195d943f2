import json

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from typer.testing import CliRunner

from ptypinn.cli import app
from ptypinn.io.artifacts import file_record, sha256_file, write_json
from ptypinn.io.dataset import DatasetError, PtychoDataset, load_dataset, save_dataset
from ptypinn.physics.forward import raster_scan
from ptypinn.physics.scan import (
    disc_overlap_fraction,
    measure_overlap,
    probe_footprint,
    select_min_spacing,
)
from ptypinn.study.design import DesignError, OverlapView, make_design, preset
from ptypinn.study.layout import split_path
from ptypinn.study.overlap import run_overlap
from ptypinn.study.simulate import run_simulation, scan_positions

from helpers import plain


def top_hat(size, radius):
    yy, xx = np.mgrid[:size, :size] - size // 2
    return (np.hypot(xx, yy) <= radius).astype(np.complex64)


# --------------------------------------------------------------------------------------------
# Spacing rules


@pytest.mark.parametrize("rule", ["disc_overlap", "patch_linear"])
def test_both_spacing_rules_on_a_synthetic_raster(rule):
    """A fine (3 px) raster thinned by each rule: the disc rule's spacing d has f(d) = target
    and the subset's nearest-neighbour overlap lands within 0.1 of it; the patch rule's is
    (1 - f) N, which with a probe half the patch across leaves far less overlap."""
    probe, patch = top_hat(64, 16), 64
    diameter = probe_footprint(probe)[1]
    grid = raster_scan((256, 256), patch, step=3.0)
    for fraction in (0.7, 0.2):
        view = OverlapView(name="view", fraction=fraction, rule=rule)
        spacing = view.spacing(patch, diameter)
        kept = grid[select_min_spacing(grid, spacing, seed=456)]
        measured = measure_overlap(kept, probe, (256, 256), 7)
        assert pdist(kept).min() >= spacing
        if rule == "disc_overlap":
            assert float(disc_overlap_fraction(spacing, diameter)) == pytest.approx(fraction)
            assert measured["nearest_overlap"] <= fraction
            assert measured["nearest_overlap"] == pytest.approx(fraction, abs=0.1)
        else:
            assert spacing == pytest.approx((1 - fraction) * patch)
            assert measured["nearest_overlap"] < fraction - 0.1
            if spacing >= diameter:  # sparse: footprints S = 51.2 px apart, D = 33 px across
                assert measured["nearest_overlap"] == 0.0
        assert measured["knn_overlap"] <= measured["nearest_overlap"]


# --------------------------------------------------------------------------------------------
# Phase D end to end


def entry_measures(entry):
    return {
        (split, entry["nearest_overlap"][split], entry["knn_overlap"][split])
        for split in ("train", "test")
    }


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
    manifest = plain(run_overlap(tiny_design, phase_c, out))

    source = load_dataset(split_path(phase_c, 1000, "train"))
    dense = load_dataset(split_path(out, 1000, "train", "dense"))
    assert dense.count >= 4
    assert pdist(dense.positions).min() >= tiny_design.spacing("dense")
    assert set(map(tuple, dense.positions)) <= set(map(tuple, source.positions))
    assert dense.metadata["view"] == "dense" and dense.metadata["target_fraction"] == 0.7
    assert dense.metadata["spacing_rule"] == "patch_linear" and dense.metadata[
        "spacing_px"
    ] == pytest.approx(19.2)
    assert dense.metadata["positions_kept"] + dense.metadata["positions_rejected"] == source.count
    assert dense.metadata["overlap_source"] == {
        "path": "dose_1000/train.npz",
        "sha256": sha256_file(split_path(phase_c, 1000, "train")),
    }
    dense_entry = manifest["doses"][0]["views"][0]
    assert dense_entry["formed"] and dense_entry["files"]["test"] == file_record(
        split_path(out, 1000, "test", "dense"), out
    )
    diameter = probe_footprint(source.probe)[1]
    assert (dense_entry["rule"], dense_entry["spacing_px"], dense_entry["probe_diameter_px"]) == (
        "patch_linear",
        pytest.approx(19.2),
        diameter,
    )
    assert manifest["doses"][0]["probe_diameter_px"] == diameter

    # The tiny scan is too small for the sparse view: nothing written, both splits reported.
    assert not stale.parent.exists()
    assert [(e["view"], e["split"]) for e in manifest["not_formed"]] == [
        ("sparse", "train"),
        ("sparse", "test"),
    ]
    assert all(
        e["dose"] == 1000.0 and e["count"] < 4 and "fewer than the minimum 4" in e["reason"]
        for e in manifest["not_formed"]
    )

    metrics = json.loads((out / "metrics.json").read_text())
    assert [(m["view"], m["split"]) for m in metrics] == [
        ("baseline", "train"),
        ("baseline", "test"),
        ("dense", "train"),
        ("dense", "test"),
    ]
    required = {
        "dose",
        "view",
        "split",
        "rule",
        "target_fraction",
        "spacing_px",
        "nearest_overlap",
        "knn_overlap",
        "neighbor_count",
        "mean_nn_spacing_px",
        "coverage",
        "probe_diameter_px",
        "count",
    }
    assert all(required <= set(m) for m in metrics)
    baseline, view = metrics[0], metrics[2]
    assert baseline["count"] == source.count and view["count"] == dense.count
    assert (
        baseline["rule"] is None
        and baseline["target_fraction"] is None
        and view["rule"] == "patch_linear"
    )
    assert (
        view["nearest_overlap"] < baseline["nearest_overlap"]
        and view["knn_overlap"] < baseline["knn_overlap"]
    )
    assert view["coverage"] <= baseline["coverage"]
    # The nearest-neighbour overlap is that of the subset's own nearest distances.
    nearest = np.sort(squareform(pdist(dense.positions)), axis=1)[:, 1]
    assert view["nearest_overlap"] == pytest.approx(
        float(disc_overlap_fraction(nearest, diameter).mean())
    )
    assert entry_measures(dense_entry) == {
        ("train", metrics[2]["nearest_overlap"], metrics[2]["knn_overlap"]),
        ("test", metrics[3]["nearest_overlap"], metrics[3]["knn_overlap"]),
    }
    assert json.loads((out / "overlap_manifest.json").read_text()) == manifest


def test_run_overlap_is_byte_reproducible(tiny_design, phase_c, tmp_path):
    for name in ("d1", "d2"):
        run_overlap(tiny_design, phase_c, tmp_path / name)
    files = sorted(
        p.relative_to(tmp_path / "d1") for p in (tmp_path / "d1").rglob("*") if p.is_file()
    )
    assert len(files) == 4
    assert all(
        (tmp_path / "d1" / f).read_bytes() == (tmp_path / "d2" / f).read_bytes() for f in files
    )


def flat_patterns(count: int, probe: np.ndarray) -> np.ndarray:
    """Placeholder patterns carrying half of the probe's energy (a passive object's worth)."""
    level = np.sqrt(0.5 * np.sum(np.abs(probe) ** 2) / probe.size)
    return np.full((count, *probe.shape), level, np.float32)


def test_a_view_short_in_one_split_is_written_in_neither(tiny_design, tmp_path):
    """Train has a wide scan, test only two positions: the dense view must not be half-written."""
    probe = top_hat(64, 16)
    obj = np.ones((256, 256), np.complex64)
    root = tmp_path / "c"
    files = {}
    for split, positions in (
        ("train", raster_scan((128, 256), 64, 12.0)),
        ("test", np.array([[40.0, 200.0], [200.0, 200.0]])),
    ):
        dataset = PtychoDataset(
            diffraction=flat_patterns(len(positions), probe),
            xcoords=positions[:, 0].copy(),
            ycoords=positions[:, 1].copy(),
            probe=probe,
            obj=obj,
        )
        files[split] = file_record(save_dataset(split_path(root, 500, split), dataset), root)
    write_json(root / "simulation_manifest.json", {"doses": [{"dose": 500.0, "files": files}]})
    manifest = plain(run_overlap(tiny_design, root, tmp_path / "d", views=["dense"]))
    assert not (tmp_path / "d" / "dose_500").exists()
    train, test = manifest["not_formed"]
    assert train["split"] == "train" and train["count"] >= 4 and "test split" in train["reason"]
    assert test["split"] == "test" and test["count"] == 2


def test_run_overlap_refuses_bad_inputs(tiny_design, phase_c, tmp_path):
    with pytest.raises(DatasetError, match="run `ptypinn simulate` first"):
        run_overlap(tiny_design, tmp_path / "nowhere", tmp_path / "d")
    broken = tmp_path / "broken"
    write_json(
        broken / "simulation_manifest.json", {"doses": [{"dose": 1000.0, "files": {"train": {}}}]}
    )
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
    result = CliRunner().invoke(
        app,
        [
            "overlap",
            "--config",
            str(config),
            "--phase-c-root",
            str(phase_c),
            "--output-root",
            str(out),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "dose 1000 dense (patch_linear, D = 33.0 px, S = 19.2 px): kept" in result.output
    assert (
        "overlap target 0.7, nearest-neighbour 0." in result.output
        and "mean of K=7 nearest 0." in result.output
    )
    assert "not formed: dose 1000 view 'sparse' train" in result.output
    assert split_path(out, 1000, "test", "dense").is_file() and (out / "metrics.json").is_file()

    result = CliRunner().invoke(
        app,
        [
            "overlap",
            "--config",
            str(config),
            "--phase-c-root",
            str(phase_c),
            "--output-root",
            str(out),
            "--view",
            "dense",
            "--dose",
            "1000",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "sparse" not in result.output


def test_run_overlap_refuses_a_view_the_data_cannot_reach(tmp_path):
    """The design's own probe (D = 33 px) allows the dense spacing 7.84 px at a 5 px step, but the
    data's probe is a small top hat (D = 17 px): its spacing 4.0 px is below the step."""
    design = make_design(
        {
            "name": "fine",
            "patch_size": 64,
            "simulation": {"object_size": 128, "scan": {"step_px": 5.0}},
        }
    )
    probe = top_hat(64, 8)
    assert design.spacing("dense", probe_footprint(probe)[1]) < 5.0 <= design.spacing("dense")
    root = tmp_path / "c"
    positions = raster_scan((128, 128), 64, 5.0)
    files = {}
    for split in ("train", "test"):
        dataset = PtychoDataset(
            diffraction=flat_patterns(len(positions), probe),
            xcoords=positions[:, 0].copy(),
            ycoords=positions[:, 1].copy(),
            probe=probe,
        )
        files[split] = file_record(save_dataset(split_path(root, 500, split), dataset), root)
    write_json(root / "simulation_manifest.json", {"doses": [{"dose": 500.0, "files": files}]})
    with pytest.raises(
        DesignError, match=r"dose 500: view 'dense' .* below the base scan step 5 px"
    ) as caught:
        run_overlap(design, root, tmp_path / "d")
    assert "'sparse'" not in str(caught.value)
    assert not (tmp_path / "d").exists()


def view_positions(design, positions, probe_diameter, boundary):
    """Each view's positions per split, selected as phase D does, from a y split at boundary."""
    splits = {
        "train": positions[positions[:, 1] < boundary],
        "test": positions[positions[:, 1] >= boundary],
    }
    return {
        (view.name, split): part[
            select_min_spacing(
                part, design.spacing(view.name, probe_diameter), design.seeds.subsampling
            )
        ]
        for view in design.views
        for split, part in splits.items()
    }


@pytest.mark.slow
def test_smoke_preset_views_have_their_overlap_and_enough_positions(tmp_path):
    """Through phases C and D: every view holds at least 50 positions per split and its
    nearest-neighbour overlap is within 0.1 of its target."""
    design = preset("smoke")
    run_simulation(design, tmp_path / "c", doses=[1e4])
    manifest = plain(run_overlap(design, tmp_path / "c", tmp_path / "d"))
    assert manifest["not_formed"] == []
    rows = json.loads((tmp_path / "d" / "metrics.json").read_text())
    views = [row for row in rows if row["view"] != "baseline"]
    assert {(row["view"], row["split"]) for row in views} == {
        (v, s) for v in ("dense", "sparse") for s in ("train", "test")
    }
    for row in views:
        assert row["rule"] == "disc_overlap" and row["count"] >= 50, row
        assert abs(row["nearest_overlap"] - row["target_fraction"]) <= 0.1, row
    train = load_dataset(split_path(tmp_path / "c", 1e4, "train"))
    assert train.count >= 1000  # the PINN trains on thousands of patterns


@pytest.mark.parametrize(("name", "minimum"), [("smoke", 50), ("full", 200)])
def test_preset_views_have_their_overlap_and_enough_positions(name, minimum):
    """Each preset's scan geometry (positions only, split at half the object as phase C does):
    every view holds enough positions per split, within 0.1 of its target."""
    design = preset(name)
    size = design.simulation.object_size
    diameter = design.probe_diameter()
    probe = design.simulation.probe.build(design.patch_size)
    for (view, split), kept in view_positions(
        design, scan_positions(design, (size, size)), diameter, size / 2
    ).items():
        measured = measure_overlap(kept, probe, (size, size), design.neighbor_count)
        assert measured["count"] >= minimum, (view, split, measured)
        assert abs(measured["nearest_overlap"] - design.view(view).fraction) <= 0.1, (
            view,
            split,
            measured,
        )


def test_a_run_for_one_dose_removes_the_views_of_other_doses(tiny_design, tmp_path):
    phase_c = tmp_path / "c"
    run_simulation(tiny_design, phase_c, doses=[1000, 2000])
    out = tmp_path / "d"
    run_overlap(tiny_design, phase_c, out, views=["dense"])
    assert split_path(out, 2000, "train", "dense").is_file()
    manifest = plain(run_overlap(tiny_design, phase_c, out, doses=[1000], views=["dense"]))
    assert [entry["dose"] for entry in manifest["doses"]] == [1000.0]
    assert not (out / "dose_2000").exists() and split_path(out, 1000, "train", "dense").is_file()
