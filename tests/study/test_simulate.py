import json

import numpy as np
import pytest

from ptypinn.io.artifacts import sha256_file
from ptypinn.io.dataset import load_dataset
from ptypinn.physics.samples import AMPLITUDE_RANGE, PHASE_RANGE, default_object
from ptypinn.physics.scan import illuminated, probe_footprint
from ptypinn.study.design import make_design, with_inputs
from ptypinn.study.scoring import scored_region
from ptypinn.study.simulate import (
    clean_amplitudes,
    default_source,
    observe,
    run_simulation,
    scan_positions,
)

from helpers import plain


def test_default_object_ranges():
    obj = default_object(128)
    assert obj.dtype == np.complex64 and obj.shape == (128, 128)
    assert np.abs(obj).min() == pytest.approx(AMPLITUDE_RANGE[0], abs=1e-5)
    assert np.abs(obj).max() == pytest.approx(AMPLITUDE_RANGE[1], abs=1e-5)
    assert np.angle(obj).min() == pytest.approx(PHASE_RANGE[0], abs=1e-4)
    assert np.angle(obj).max() == pytest.approx(PHASE_RANGE[1], abs=1e-4)
    assert PHASE_RANGE[1] >= np.pi / 2


@pytest.mark.parametrize("nphotons", [1e3, 1e5])
def test_mean_counts_equal_the_dose_within_poisson_error(tiny_design, nphotons):
    source = default_source(tiny_design)
    positions = scan_positions(tiny_design, source.obj.shape)
    amplitudes = clean_amplitudes(source, positions)
    noisy, scale, _ = observe(amplitudes, nphotons, seed=7)
    counts = np.rint((scale * noisy.astype(np.float64)) ** 2)
    # Stored amplitudes are exactly sqrt(k)/s, so s^2 X^2 recovers whole photon counts.
    np.testing.assert_allclose(
        (scale * noisy.astype(np.float64)) ** 2, counts, rtol=1e-6, atol=1e-6
    )
    per_pattern = counts.sum(axis=(1, 2))
    n = per_pattern.size
    # The mean of n independent Poisson totals with mean nphotons has standard error
    # sqrt(nphotons / n).
    assert abs(per_pattern.mean() - nphotons) < 5 * np.sqrt(nphotons / n)


def test_dose_changes_noise_not_scale(tiny_design):
    source = default_source(tiny_design)
    amplitudes = clean_amplitudes(source, scan_positions(tiny_design, source.obj.shape))
    clean_energy = (amplitudes.astype(np.float64) ** 2).sum(axis=(1, 2)).mean()
    errors = []
    for nphotons in (1e3, 1e5):
        noisy, _, _ = observe(amplitudes, nphotons, seed=3)
        # E[X^2] = E[k]/s^2 = A^2: the stored energy is unbiased at every dose.
        assert (noisy.astype(np.float64) ** 2).sum(axis=(1, 2)).mean() == pytest.approx(
            clean_energy, rel=0.02
        )
        errors.append(np.abs(noisy - amplitudes).mean())
    assert errors[0] > 3 * errors[1]  # 100x the photons: ~10x smaller amplitude noise


def test_phase_c_layout_split_and_manifest(tiny_design, tmp_path):
    manifest = plain(run_simulation(tiny_design, tmp_path, doses=[1e3, 1e4]))
    assert [entry["folder"] for entry in manifest["doses"]] == ["dose_1000", "dose_10000"]
    for entry in manifest["doses"]:
        train = load_dataset(tmp_path / entry["folder"] / "train.npz")
        test = load_dataset(tmp_path / entry["folder"] / "test.npz")
        boundary = tiny_design.simulation.object_size / 2
        assert train.ycoords.max() < boundary <= test.ycoords.min()
        shared = set(map(tuple, train.positions)) & set(map(tuple, test.positions))
        assert not shared
        counts = entry["counts"]
        assert train.count + test.count + counts["dropped_by_guard_band"] == counts["total"]
        assert train.metadata["nphotons"] == entry["dose"] and train.metadata["split"] == "train"
        # measured photons: whole counts k = (s X)^2, summed per pattern, averaged over the file
        for split, data in (("train", train), ("test", test)):
            counts = np.rint((entry["dose_scale"] * data.diffraction.astype(np.float64)) ** 2)
            measured = entry["measured_photons_per_pattern"][split]
            assert measured == pytest.approx(counts.sum(axis=(1, 2)).mean(), rel=1e-6)
        for record in entry["files"].values():
            assert record["sha256"] == sha256_file(tmp_path / record["path"])
    on_disk = json.loads((tmp_path / "simulation_manifest.json").read_text())
    assert on_disk == manifest


def test_positions_are_shared_across_doses(tiny_design, tmp_path):
    run_simulation(tiny_design, tmp_path, doses=[1e3, 1e5])
    low, high = (
        load_dataset(tmp_path / "dose_1000/test.npz"),
        load_dataset(tmp_path / "dose_100000/test.npz"),
    )
    np.testing.assert_array_equal(low.positions, high.positions)
    assert not np.array_equal(low.diffraction, high.diffraction)


def test_same_seed_same_bytes_other_seed_other_bytes(tiny_design, tmp_path):
    run_simulation(tiny_design, tmp_path / "a", doses=[1e4])
    run_simulation(tiny_design, tmp_path / "b", doses=[1e4])
    files = ["dose_10000/train.npz", "dose_10000/test.npz", "simulation_manifest.json"]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    reseeded = make_design({**tiny_design.to_dict(), "seeds": {"simulation": 43}})
    run_simulation(reseeded, tmp_path / "c", doses=[1e4])
    assert sha256_file(tmp_path / "c/dose_10000/train.npz") != sha256_file(
        tmp_path / "a/dose_10000/train.npz"
    )


@pytest.mark.parametrize("guard_band", [True, False])
def test_guard_band_keeps_training_light_off_scored_test_pixels(tiny_design, tmp_path, guard_band):
    simulation = {**tiny_design.simulation.model_dump(), "guard_band": guard_band}
    design = make_design({**tiny_design.to_dict(), "simulation": simulation})
    manifest = plain(run_simulation(design, tmp_path, doses=[1e4]))
    train, test = (load_dataset(tmp_path / "dose_10000" / f"{s}.npz") for s in ("train", "test"))
    mask, _ = probe_footprint(train.probe)
    shape = train.obj.shape
    lit_by_training = illuminated(train.positions, mask, (0, shape[0], 0, shape[1]))
    scored = scored_region(test)
    dropped = manifest["doses"][0]["counts"]["dropped_by_guard_band"]
    if guard_band:
        assert not (lit_by_training & scored).any() and dropped > 0
        boundary = design.simulation.object_size / 2
        last_training_row = np.flatnonzero(lit_by_training.any(axis=1)).max()
        assert last_training_row < boundary <= np.flatnonzero(scored.any(axis=1)).min()
        assert "guard band" in manifest["split_rule"]
    else:  # without it, training positions light part of the scored test region
        assert (lit_by_training & scored).sum() > 0.05 * scored.sum() and dropped == 0


def test_a_new_run_removes_the_doses_an_earlier_run_wrote(tiny_design, tmp_path):
    """The folder matches the manifest: no dose folder of an earlier design is left behind."""
    run_simulation(tiny_design, tmp_path, doses=[1000, 2000])
    (tmp_path / "notes.txt").write_text("mine")
    manifest = plain(run_simulation(tiny_design, tmp_path, doses=[1000]))
    assert [entry["dose"] for entry in manifest["doses"]] == [1000.0]
    assert (
        not (tmp_path / "dose_2000").exists() and (tmp_path / "dose_1000" / "train.npz").is_file()
    )
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_the_users_object_and_probe_are_simulated_with_their_sha256(tiny_design, tmp_path):
    rng = np.random.default_rng(5)
    obj = np.exp(1j * rng.uniform(-1, 1, (140, 150))).astype(np.complex64)
    probe = (tiny_design.simulation.probe.build(64) * np.exp(0.3j)).astype(np.complex64)
    np.savez(tmp_path / "obj.npz", objectGuess=obj)
    np.savez(tmp_path / "probe.npz", probeGuess=probe)
    design = with_inputs(tiny_design, tmp_path / "obj.npz", tmp_path / "probe.npz")
    manifest = plain(run_simulation(design, tmp_path / "c", doses=[1e4]))
    source = manifest["source"]
    assert source["object"] == str(tmp_path / "obj.npz")
    assert source["object_file_sha256"] == sha256_file(tmp_path / "obj.npz")
    assert source["probe_file_sha256"] == sha256_file(tmp_path / "probe.npz")
    assert source["probe"] == {"kind": "file", "file": str(tmp_path / "probe.npz")}
    test = load_dataset(tmp_path / "c" / "dose_10000" / "test.npz")
    np.testing.assert_array_equal(test.obj, obj)
    np.testing.assert_array_equal(test.probe, probe)
    assert test.metadata["source"] == source


def test_a_model_probe_is_recorded_by_its_parameters(tiny_design, tmp_path):
    manifest = plain(run_simulation(tiny_design, tmp_path / "c", doses=[1e4]))
    assert manifest["source"]["probe"] == {
        "kind": "disk",
        "diameter_fraction": 0.5,
        "curvature": 3.0,
    }
    assert not any(key.endswith("sha256") for key in manifest["source"])


def test_a_dose_folder_linked_out_of_the_output_is_refused(tiny_design, tmp_path):
    """Issue 27, item 2: nothing is written through a link that leads out of the folder."""
    from ptypinn.io.artifacts import OutputError

    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "dose_10000").symlink_to(outside)
    design = tiny_design.model_copy(update={"doses": (1e4,)})
    with pytest.raises(OutputError, match="a symbolic link leads it out of the output folder"):
        run_simulation(design, tmp_path / "c")
    assert list(outside.iterdir()) == []
