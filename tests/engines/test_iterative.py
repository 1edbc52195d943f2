import json

import numpy as np
import pytest
import torch
from cdtools.tools.initializers import exit_wave_geometry
from cdtools.tools.interactions import translations_to_pixel
from cdtools.tools.propagators import far_field as cdtools_far_field

from ptypinn.io.artifacts import sha256_file
from ptypinn.io.dataset import DatasetError, PtychoDataset, save_dataset
from ptypinn.engines.cdtools import cdtools_setup
from ptypinn.engines.iterative import (
    OBJECT_PIXEL_M,
    EngineUnavailable,
    Geometry,
    ObjectFrame,
    ReconstructionInput,
    amplitude_to_intensity,
    from_engine_object,
    positions_to_translations,
    ptychi_import_error,
    reconstruct,
    require_engine,
    to_engine_object,
)
from ptypinn.study.iterative import plan_jobs, run_iterative_matrix
from ptypinn.analysis.metrics import amplitude_phase_ssim, centre_box
from ptypinn.physics.forward import disk_probe, far_field, raster_scan
from ptypinn.physics.samples import default_object
from ptypinn.study.simulate import SimulationSource, clean_amplitudes

from conftest import record_phases
from test_cli import run_main


def simulated_input(size=32, object_size=80, step=6.0, jitter=0.0):
    """Noiseless dataset: default object, apodised disk probe of diameter N/2, raster scan."""
    obj = default_object(object_size)
    probe = disk_probe(size, size / 2, edge=1.0, curvature=3.0)
    positions = raster_scan(obj.shape, size, step, jitter=jitter, rng=np.random.default_rng(1))
    amplitudes = clean_amplitudes(SimulationSource(obj, probe), positions)
    return ReconstructionInput(amplitudes, positions, probe, obj.shape), obj


# ---------------------------------------------------------------------------- conventions


def test_cdtools_far_field_intensity_equals_our_amplitude_squared(rng):
    waves = torch.from_numpy((rng.normal(size=(3, 16, 16)) + 1j * rng.normal(size=(3, 16, 16))).astype(np.complex64))
    ours = amplitude_to_intensity(far_field(waves).numpy())
    theirs = cdtools_far_field(waves).abs().square().numpy()
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-6)
    # Parseval: both are orthonormal, so the intensity sums to the exit-wave energy
    np.testing.assert_allclose(ours.sum(axis=(1, 2)), waves.abs().square().sum(dim=(1, 2)).numpy(), rtol=1e-5)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_geometry_gives_cdtools_the_object_pixel_along_rows_y_and_columns_x(size):
    geometry = Geometry(size)
    basis = exit_wave_geometry(geometry.detector_basis(), (size, size), geometry.wavelength_m, geometry.distance_m)
    expected = np.array([[0, OBJECT_PIXEL_M], [OBJECT_PIXEL_M, 0], [0, 0]])
    np.testing.assert_allclose(basis.numpy(), expected, rtol=1e-5, atol=1e-20)


def test_positions_become_window_corners_in_the_engine_object(rng):
    size, shape = 32, (100, 120)
    positions = np.stack((rng.uniform(-3, 125, 50), rng.uniform(-3, 105, 50)), axis=1)  # some windows leave the object
    frame = ObjectFrame.around(positions, size, shape)
    geometry = Geometry(size)
    basis = exit_wave_geometry(geometry.detector_basis(), (size, size), geometry.wavelength_m, geometry.distance_m)
    pixels = translations_to_pixel(basis, torch.from_numpy(positions_to_translations(positions, geometry))) - torch.from_numpy(frame.min_translation(size))
    top, bottom, left, right = frame.pad
    expected = np.stack((positions[:, 1] - size // 2 + top, positions[:, 0] - size // 2 + left), axis=1)
    np.testing.assert_allclose(pixels.numpy(), expected, atol=2e-3)
    corners = np.floor(pixels.numpy())
    height, width = frame.engine_shape
    assert corners.min() >= 0 and corners[:, 0].max() + size <= height and corners[:, 1].max() + size <= width


def test_object_round_trips_through_the_engine_frame(rng):
    obj = (rng.normal(size=(40, 50)) + 1j * rng.normal(size=(40, 50))).astype(np.complex64)
    frame = ObjectFrame(shape=obj.shape, pad=(3, 1, 2, 5))
    engine = to_engine_object(obj, frame)
    assert engine.shape == frame.engine_shape == (44, 57)
    assert np.all(engine[:3] == 1) and np.all(engine[:, -5:] == 1)
    np.testing.assert_array_equal(from_engine_object(torch.from_numpy(engine), frame), obj)


def test_cdtools_model_of_the_truth_reproduces_our_data_and_returns_our_probe_and_object():
    inp, obj = simulated_input(step=8.0)  # integer positions: both models sample the same pixels
    setup = cdtools_setup(inp, initial_object=obj)
    indices = torch.arange(len(inp.positions_px))
    (_, translations), patterns = setup.dataset[:]
    with torch.no_grad():
        simulated = setup.model.forward(indices, translations).numpy()
    np.testing.assert_allclose(patterns.numpy(), amplitude_to_intensity(inp.diffraction_amplitude))
    np.testing.assert_allclose(simulated, patterns.numpy(), rtol=1e-3, atol=1e-5 * patterns.numpy().max())
    np.testing.assert_allclose(setup.model.physical_probe(), inp.probe, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(from_engine_object(setup.model.obj, setup.frame), obj)


def test_subpixel_positions_reproduce_our_bilinear_data_and_keep_sign_and_axis_order():
    inp, obj = simulated_input(step=8.0, jitter=1.5)

    def misfit(positions):
        setup = cdtools_setup(ReconstructionInput(inp.diffraction_amplitude, positions, inp.probe, inp.object_shape), initial_object=obj)
        (_, translations), _ = setup.dataset[:]
        with torch.no_grad():
            amplitude = setup.model.forward(torch.arange(len(translations)), translations).sqrt().numpy()
        return np.linalg.norm(amplitude - inp.diffraction_amplitude) / np.linalg.norm(inp.diffraction_amplitude)

    whole = np.round(inp.positions_px)
    fraction = inp.positions_px - whole
    assert misfit(inp.positions_px) < 1e-4  # same bilinear object sampling as physics.extract_patches
    assert min(misfit(whole), misfit(whole - fraction), misfit(whole + fraction[:, ::-1])) > 0.03


def test_input_checks_shapes():
    inp, _ = simulated_input(step=12.0)
    with pytest.raises(DatasetError, match="positions must be"):
        ReconstructionInput(inp.diffraction_amplitude, inp.positions_px[:-1], inp.probe, inp.object_shape)
    with pytest.raises(DatasetError, match="non-empty"):
        ReconstructionInput(inp.diffraction_amplitude[:, :, :30], inp.positions_px, inp.probe, inp.object_shape)
    with pytest.raises(DatasetError, match="probe must be 32x32"):
        ReconstructionInput(inp.diffraction_amplitude, inp.positions_px, inp.probe[:16, :16], inp.object_shape)


def test_input_from_dataset_without_object_spans_every_window():
    inp, _ = simulated_input(step=12.0)
    dataset = PtychoDataset(inp.diffraction_amplitude, inp.positions_px[:, 0].copy(), inp.positions_px[:, 1].copy(), inp.probe)
    derived = ReconstructionInput.from_dataset(dataset)
    assert derived.object_shape == (int(np.ceil(inp.positions_px[:, 1].max())) + 17, int(np.ceil(inp.positions_px[:, 0].max())) + 17)


# ---------------------------------------------------------------------------- reconstruction


def test_cdtools_reconstructs_a_noiseless_dataset():
    inp, obj = simulated_input(jitter=1.0)
    result = reconstruct(inp, iterations=40, progress=None)
    assert result.obj.shape == obj.shape and result.obj.dtype == np.complex64
    assert result.losses.shape == (40,) and result.losses[-1] < 0.01 * result.losses[0]
    assert result.wall_time_s < 60
    scores = amplitude_phase_ssim(result.obj, obj, centre_box(inp.positions_px, obj.shape))
    assert scores["phase_ssim"] >= 0.9
    assert scores["amplitude_ssim"] >= 0.8
    np.testing.assert_array_equal(result.probe, inp.probe)  # the known probe stays fixed by default
    assert not result.probe_refined


def test_same_seed_same_reconstruction_and_refined_probe_moves():
    inp, _ = simulated_input(step=12.0)
    first, second = (reconstruct(inp, iterations=2, seed=3, progress=None) for _ in range(2))
    np.testing.assert_array_equal(first.obj, second.obj)
    refined = reconstruct(inp, iterations=2, seed=3, refine_probe=True, progress=None)
    assert refined.probe_refined and not np.array_equal(refined.probe, inp.probe)


# ---------------------------------------------------------------------------- engines


def test_ptychi_is_reported_unavailable_with_the_real_import_error():
    error = ptychi_import_error()
    if error is None:
        pytest.skip("pty-chi imports in this environment")
    with pytest.raises(EngineUnavailable) as caught:
        require_engine("ptychi")
    message = str(caught.value)
    assert error in message and "torchvision" in message and "pip install ptychi" in message and "--engine cdtools" in message


def test_unknown_engine_is_a_user_error():
    with pytest.raises(EngineUnavailable, match="unknown engine 'epie'"):
        require_engine("epie")


# ---------------------------------------------------------------------------- job matrix


def _tiny_dataset(obj_size=40, size=16, step=4.0, nphotons=1000.0):
    obj = default_object(obj_size)
    probe = disk_probe(size, size / 2, edge=1.0, curvature=2.0)
    positions = raster_scan(obj.shape, size, step)
    amplitudes = clean_amplitudes(SimulationSource(obj, probe), positions)
    return PtychoDataset(amplitudes, positions[:, 0].copy(), positions[:, 1].copy(), probe, obj=obj, metadata={"nphotons": nphotons})


def _study(tmp_path, doses=(1000, 10000), views=("dense", "sparse")):
    phase_c, phase_d = tmp_path / "c", tmp_path / "d"
    for dose in doses:
        dataset = _tiny_dataset(nphotons=float(dose))
        for split in ("train", "test"):
            save_dataset(phase_c / f"dose_{dose}" / f"{split}.npz", dataset)
            for view in views:
                save_dataset(phase_d / f"dose_{dose}" / view / f"{split}.npz", dataset.subset(np.arange(0, dataset.count, 2)))
    record_phases(phase_c, phase_d, doses, views)
    return phase_c, phase_d


def test_jobs_cover_doses_views_and_splits_and_filters_narrow_them(tmp_path):
    phase_c, phase_d = _study(tmp_path)
    jobs, skips = plan_jobs(phase_c, phase_d, tmp_path / "f")
    assert skips == []
    assert [(j.dose, j.view, j.split) for j in jobs] == [
        (dose, view, split) for dose in (1e3, 1e4) for view in ("baseline", "dense", "sparse") for split in ("train", "test")
    ]
    assert jobs[3].dataset == phase_d / "dose_1000" / "dense" / "test.npz"
    assert jobs[3].folder == tmp_path / "f" / "dose_1000" / "dense" / "test"
    jobs, _ = plan_jobs(phase_c, phase_d, tmp_path / "f", doses=[1e4], views=["baseline", "sparse"], splits=["test"])
    assert [(j.dose, j.view, j.split) for j in jobs] == [(1e4, "baseline", "test"), (1e4, "sparse", "test")]
    assert not (tmp_path / "f").exists()


def test_missing_views_are_skipped_and_recorded_in_a_dry_run_that_writes_nothing(tmp_path):
    phase_c, phase_d = _study(tmp_path, views=("dense",))
    manifest = run_iterative_matrix(phase_c, phase_d, tmp_path / "f", dry_run=True, allow_missing_phase_d=True)
    assert {job["status"] for job in manifest["jobs"]} == {"dry-run"}
    assert len(manifest["jobs"]) == 2 * 2 * 2
    assert manifest["skipped_count"] == 2
    assert [(s["dose"], s["view"]) for s in manifest["skipped_views"]] == [(1e3, "sparse"), (1e4, "sparse")]
    assert "missing phase D data" in manifest["skipped_views"][0]["reason"]
    assert not (tmp_path / "f").exists()


def test_matrix_writes_reconstructions_records_failures_and_the_manifest(tmp_path):
    phase_c, phase_d = _study(tmp_path, doses=(1000,), views=("dense",))
    (phase_d / "dose_1000" / "dense" / "test.npz").write_bytes(b"not an npz")
    record_phases(phase_c, phase_d, (1000,), ("dense",))  # a broken file its manifest vouches for
    root = tmp_path / "f"
    manifest = run_iterative_matrix(phase_c, phase_d, root, views=["baseline", "dense"], splits=["test"], iterations=2)
    baseline, dense = manifest["jobs"]
    assert baseline["status"] == "ok" and baseline["error"] is None
    assert dense["status"] == "failed" and "not a readable NPZ" in dense["error"]
    assert manifest["failed_count"] == 1 and manifest["engine"] == "cdtools"
    assert json.loads((root / "reconstruction_manifest.json").read_text()) == manifest
    folder = root / "dose_1000" / "baseline" / "test"
    assert baseline["files"]["reconstruction"] == {
        "path": "dose_1000/baseline/test/reconstruction.npz",
        "bytes": (folder / "reconstruction.npz").stat().st_size,
        "sha256": sha256_file(folder / "reconstruction.npz"),
    }
    assert (folder / "reconstruction.png").read_bytes()[:4] == b"\x89PNG"
    with np.load(folder / "reconstruction.npz", allow_pickle=False) as npz:
        dataset = _tiny_dataset()
        assert npz["objectGuess"].shape == dataset.obj.shape and npz["objectGuess"].dtype == np.complex64
        np.testing.assert_array_equal(npz["xcoords"], dataset.xcoords)
        np.testing.assert_array_equal(npz["probeGuess"], dataset.probe)
        assert npz["loss_history"].shape == (2,) and float(npz["loss_history"][-1]) == baseline["final_loss"]
        assert int(npz["iterations"]) == 2 and float(npz["wall_time_s"]) > 0
        metadata = json.loads(str(npz["metadata"]))
    assert metadata["engine"] == "cdtools" and metadata["split"] == "test" and metadata["nphotons"] == 1000.0
    test_sha256 = sha256_file(phase_c / "dose_1000" / "test.npz")
    assert metadata["dataset_sha256"] == baseline["dataset_sha256"] == test_sha256
    assert not list(root.rglob("*.tmp"))

    resumed = run_iterative_matrix(
        phase_c,
        phase_d,
        root,
        views=["baseline", "dense"],
        splits=["test"],
        iterations=2,
        resume=True,
    )
    assert [job["reused"] for job in resumed["jobs"]] == [True, False]  # the failed job runs again
    (folder / "reconstruction.npz").unlink()
    again = run_iterative_matrix(
        phase_c, phase_d, root, views=["baseline"], splits=["test"], iterations=2, resume=True
    )
    assert again["jobs"][0]["reused"] is False and (folder / "reconstruction.npz").is_file()


def test_cli_runs_the_matrix_and_fails_when_a_job_fails(tmp_path, monkeypatch, capsys):
    phase_c, phase_d = _study(tmp_path, doses=(1000,), views=("dense",))
    args = ["reconstruct-iterative", "--phase-c-root", str(phase_c), "--phase-d-root", str(phase_d), "--artifact-root", str(tmp_path / "f")]
    code, out = run_main(monkeypatch, capsys, *args, "--view", "dense", "--split", "train", "--iterations", "1")
    assert code == 0, out.err
    assert "dose 1000 dense/train: ok" in out.out
    (phase_c / "dose_1000" / "test.npz").write_bytes(b"broken")
    baseline = ("--view", "baseline", "--split", "test", "--iterations", "1")
    code, out = run_main(monkeypatch, capsys, *args, *baseline)
    assert code == 2 and "test.npz changed since simulation_manifest.json was written" in out.err
    record_phases(phase_c, phase_d, (1000,), ("dense",))  # the manifest vouches for the bad file
    code, out = run_main(monkeypatch, capsys, *args, *baseline)
    assert code == 1 and "1 of 1 jobs failed" in out.out


def test_cli_user_errors_exit_2_without_traceback(tmp_path, monkeypatch, capsys):
    phase_c, phase_d = _study(tmp_path, doses=(1000,), views=("dense",))
    args = ["reconstruct-iterative", "--phase-c-root", str(phase_c), "--phase-d-root", str(phase_d), "--artifact-root", str(tmp_path / "f")]
    cases = [
        (["--split", "validation"], "--split must be one of"),
        (["--iterations", "0"], "--iterations must be at least 1"),
        (["--dose", "5"], "dose(s) [5.0] not in"),
        (["--engine", "epie"], "unknown engine 'epie'"),
    ]
    if ptychi_import_error() is not None:
        cases.append((["--engine", "ptychi"], "engine 'ptychi' (pty-chi, PyPI package 'ptychi') cannot be imported"))
    for extra, expected in cases:
        code, out = run_main(monkeypatch, capsys, *args, *extra)
        assert code == 2, (extra, out)
        assert "error:" in out.err and expected in out.err
        assert "Traceback" not in out.err + out.out
    assert not (tmp_path / "f").exists()
