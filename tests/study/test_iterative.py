"""Phase F: the (dose, view, split, engine) job matrix, its files and manifest, and its command."""

import json
import sys

import numpy as np
import pytest

from ptypinn.engines import torchvision_shim
from ptypinn.io.artifacts import sha256_file
from ptypinn.io.dataset import PtychoDataset, save_dataset
from ptypinn.io.reconstruction import read_reconstruction
from ptypinn.physics.forward import raster_scan
from ptypinn.physics.probes import disk_probe
from ptypinn.physics.samples import default_object
from ptypinn.study.design import make_design
from ptypinn.study.iterative import chosen_jobs, plan_jobs, run_iterative_matrix
from ptypinn.study.simulate import SimulationSource, clean_amplitudes

from helpers import plain, record_phases
from test_cli import run_main

ENGINES = ("cdtools", "ptychi")
DESIGN = make_design({})  # views dense and sparse, both engines at their default options
QUICK = make_design({"iterative": {"cdtools": {"iterations": 2}, "ptychi": {"iterations": 2}}})


def _tiny_dataset(obj_size=40, size=16, step=4.0, nphotons=1000.0):
    obj = default_object(obj_size)
    probe = disk_probe(size, size / 2, edge=1.0, curvature=2.0)
    positions = raster_scan(obj.shape, size, step)
    amplitudes = clean_amplitudes(SimulationSource(obj, probe), positions)
    return PtychoDataset(
        amplitudes,
        positions[:, 0].copy(),
        positions[:, 1].copy(),
        probe,
        obj=obj,
        metadata={"nphotons": nphotons},
    )


def _study(tmp_path, doses=(1000, 10000), views=("dense", "sparse")):
    phase_c, phase_d = tmp_path / "c", tmp_path / "d"
    for dose in doses:
        dataset = _tiny_dataset(nphotons=float(dose))
        for split in ("train", "test"):
            save_dataset(phase_c / f"dose_{dose}" / f"{split}.npz", dataset)
            for view in views:
                save_dataset(
                    phase_d / f"dose_{dose}" / view / f"{split}.npz",
                    dataset.subset(np.arange(0, dataset.count, 2)),
                )
    record_phases(phase_c, phase_d, doses, views)
    return phase_c, phase_d


def test_jobs_cover_doses_views_splits_and_engines_and_filters_narrow_them(tmp_path):
    phase_c, phase_d = _study(tmp_path)
    jobs, skips = plan_jobs(DESIGN, phase_c, phase_d, tmp_path / "f")
    assert skips == []
    assert [(j.dose, j.view, j.split, j.engine) for j in jobs] == [
        (dose, view, split, engine)
        for dose in (1e3, 1e4)
        for view in ("baseline", "dense", "sparse")
        for split in ("train", "test")
        for engine in ENGINES
    ]
    dense_test = jobs[7]
    assert dense_test.dataset == phase_d / "dose_1000" / "dense" / "test.npz"
    assert dense_test.folder == tmp_path / "f" / "dose_1000" / "dense" / "test" / "ptychi"
    chosen = chosen_jobs(
        jobs, doses=[1e4], views=["baseline", "sparse"], splits=["test"], engines=["cdtools"]
    )
    assert [(j.dose, j.view, j.split, j.engine) for j in chosen] == [
        (1e4, "baseline", "test", "cdtools"),
        (1e4, "sparse", "test", "cdtools"),
    ]
    assert not (tmp_path / "f").exists()


def test_a_design_with_other_view_names_gets_its_iterative_jobs(tmp_path):
    """Phase F plans the design's own views (it once fell back to dense and sparse and, with
    missing views allowed, said nothing)."""
    phase_c, phase_d = _study(tmp_path, doses=(1000,), views=("close", "far"))
    design = make_design(
        {
            "views": [
                {"name": "close", "fraction": 0.7, "rule": "patch_linear"},
                {"name": "far", "fraction": 0.2, "rule": "patch_linear"},
            ],
            "iterative": {"engines": ["cdtools"]},
        }
    )
    manifest = plain(
        run_iterative_matrix(
            design, phase_c, phase_d, tmp_path / "f", dry_run=True, allow_missing_phase_d=True
        )
    )
    assert manifest["skipped_count"] == 0
    assert [(job["view"], job["split"]) for job in manifest["jobs"]] == [
        (view, split) for view in ("baseline", "close", "far") for split in ("train", "test")
    ]


def test_missing_views_are_skipped_and_recorded_in_a_dry_run_that_writes_nothing(tmp_path):
    phase_c, phase_d = _study(tmp_path, views=("dense",))
    manifest = plain(
        run_iterative_matrix(
            DESIGN, phase_c, phase_d, tmp_path / "f", dry_run=True, allow_missing_phase_d=True
        )
    )
    assert {job["status"] for job in manifest["jobs"]} == {"dry-run"}
    assert len(manifest["jobs"]) == 2 * 2 * 2 * len(ENGINES)
    assert manifest["skipped_count"] == 2
    assert [(s["dose"], s["view"]) for s in manifest["skipped_views"]] == [
        (1e3, "sparse"),
        (1e4, "sparse"),
    ]
    assert "missing phase D data" in manifest["skipped_views"][0]["reason"]
    assert (
        set(manifest["engines"]) == set(ENGINES)
        and manifest["engines"]["ptychi"]["iterations"] == 100
    )
    assert not (tmp_path / "f").exists()


def test_matrix_writes_each_engines_reconstruction_records_failures_and_the_manifest(tmp_path):
    phase_c, phase_d = _study(tmp_path, doses=(1000,), views=("dense",))
    (phase_d / "dose_1000" / "dense" / "test.npz").write_bytes(b"not an npz")
    record_phases(phase_c, phase_d, (1000,), ("dense",))  # a broken file its manifest vouches for
    root = tmp_path / "f"
    manifest = plain(
        run_iterative_matrix(
            QUICK, phase_c, phase_d, root, views=["baseline", "dense"], splits=["test"]
        )
    )
    jobs = {(job["view"], job["engine"]): job for job in manifest["jobs"]}
    for engine in ENGINES:
        assert (
            jobs["baseline", engine]["status"] == "ok" and jobs["baseline", engine]["error"] is None
        )
        assert (
            jobs["dense", engine]["status"] == "failed"
            and "not a readable NPZ" in jobs["dense", engine]["error"]
        )
    assert manifest["failed_count"] == 2 and manifest["unavailable_engines"] == {}
    assert json.loads((root / "reconstruction_manifest.json").read_text()) == manifest
    dataset = _tiny_dataset()
    for engine in ENGINES:
        job, folder = jobs["baseline", engine], root / "dose_1000" / "baseline" / "test" / engine
        assert job["files"]["reconstruction"] == {
            "path": f"dose_1000/baseline/test/{engine}/reconstruction.npz",
            "bytes": (folder / "reconstruction.npz").stat().st_size,
            "sha256": sha256_file(folder / "reconstruction.npz"),
        }
        assert (folder / "reconstruction.png").read_bytes()[:4] == b"\x89PNG"
        rec = read_reconstruction(folder / "reconstruction.npz")
        assert (
            rec.method == engine
            and rec.obj.shape == dataset.obj.shape
            and rec.obj.dtype == np.complex64
        )
        np.testing.assert_array_equal(rec.positions_px, dataset.positions)
        np.testing.assert_array_equal(rec.probe, dataset.probe)
        assert rec.losses.shape == (2,) and float(rec.losses[-1]) == job["final_loss"]
        assert (
            rec.iterations == 2
            and rec.wall_time_s > 0
            and job["seconds_per_iteration"] == rec.wall_time_s / 2
        )
        assert rec.metadata["split"] == "test" and rec.metadata["nphotons"] == 1000.0
        assert rec.metadata["options"]["iterations"] == 2
        assert (
            rec.metadata["dataset_sha256"]
            == job["dataset_sha256"]
            == sha256_file(phase_c / "dose_1000" / "test.npz")
        )
    assert not list(root.rglob("*.tmp"))

    resumed = plain(
        run_iterative_matrix(
            QUICK, phase_c, phase_d, root, views=["baseline", "dense"], splits=["test"], resume=True
        )
    )
    assert [job["reused"] for job in resumed["jobs"]] == [
        True,
        True,
        False,
        False,
    ]  # failed jobs run again
    (root / "dose_1000" / "baseline" / "test" / "cdtools" / "reconstruction.npz").unlink()
    again = plain(
        run_iterative_matrix(
            QUICK, phase_c, phase_d, root, views=["baseline"], splits=["test"], resume=True
        )
    )
    assert [job["reused"] for job in again["jobs"]] == [False, True]  # only the damaged job runs


def test_an_engine_that_cannot_run_fails_its_jobs_and_the_others_still_run(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ptychi.api.task", None)  # pty-chi missing
    monkeypatch.setattr(torchvision_shim, "_IMPORTED", {})
    phase_c, phase_d = _study(tmp_path, doses=(1000,), views=("dense",))
    manifest = plain(
        run_iterative_matrix(  # in this process, where pty-chi is missing
            QUICK, phase_c, phase_d, tmp_path / "f", views=["baseline"], splits=["test"], workers=1
        )
    )
    cdtools, ptychi = manifest["jobs"]
    assert cdtools["engine"] == "cdtools" and cdtools["status"] == "ok"
    assert ptychi["engine"] == "ptychi" and ptychi["status"] == "failed"
    assert ptychi["error"].startswith(
        "EngineUnavailable: engine 'ptychi' needs pty-chi (PyPI package 'ptychi')"
    )
    assert "ptychi" in manifest["unavailable_engines"] and manifest["failed_count"] == 1


def test_cli_runs_the_matrix_and_fails_when_a_job_fails(tmp_path, monkeypatch, capsys):
    phase_c, phase_d = _study(tmp_path, doses=(1000,), views=("dense",))
    args = [
        "reconstruct-iterative",
        "--phase-c-root",
        str(phase_c),
        "--phase-d-root",
        str(phase_d),
        "--artifact-root",
        str(tmp_path / "f"),
    ]
    code, out = run_main(
        monkeypatch, capsys, *args, "--view", "dense", "--split", "train", "--iterations", "1"
    )
    assert code == 0, out.err
    assert (
        "dose 1000 dense/train cdtools: ok" in out.out
        and "dose 1000 dense/train ptychi: ok" in out.out
    )
    manifest = json.loads((tmp_path / "f" / "reconstruction_manifest.json").read_text())
    assert {engine: options["iterations"] for engine, options in manifest["engines"].items()} == {
        "cdtools": 1,
        "ptychi": 1,
    }
    (phase_c / "dose_1000" / "test.npz").write_bytes(b"broken")
    baseline = ("--view", "baseline", "--split", "test", "--iterations", "1", "--engine", "ptychi")
    code, out = run_main(monkeypatch, capsys, *args, *baseline)
    assert code == 2 and "test.npz changed since simulation_manifest.json was written" in out.err
    record_phases(phase_c, phase_d, (1000,), ("dense",))  # the manifest vouches for the bad file
    code, out = run_main(monkeypatch, capsys, *args, *baseline)
    assert code == 1 and "1 of 3 jobs failed" in out.out
    # the filtered runs kept the records of the jobs they left out (issue 27, item 6)
    manifest = json.loads((tmp_path / "f" / "reconstruction_manifest.json").read_text())
    jobs = {(job["view"], job["split"], job["engine"]): job for job in manifest["jobs"]}
    assert sorted(jobs) == [
        ("baseline", "test", "ptychi"),
        ("dense", "train", "cdtools"),
        ("dense", "train", "ptychi"),
    ]
    assert jobs["dense", "train", "cdtools"]["status"] == "ok"
    assert (
        "dose 1000 dense/train cdtools: ok" in out.out and "(kept from an earlier run)" in out.out
    )
    assert set(manifest["engines"]) == {"cdtools", "ptychi"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--split", "validation"], "--split must be one of"),
        (
            ["--iterations", "0"],
            "iterative.cdtools.iterations: Input should be greater than or equal to 1",
        ),
        (["--dose", "5"], "dose(s) [5.0] not in"),
        (["--view", "far"], "--view 'far' is not a view of design"),
        (["--engine", "epie"], "iterative.engines.0: Input should be 'cdtools' or 'ptychi'"),
    ],
)
def test_cli_user_errors_exit_2_without_traceback(tmp_path, monkeypatch, capsys, extra, expected):
    phase_c, phase_d = _study(tmp_path, doses=(1000,), views=("dense",))
    args = [
        "reconstruct-iterative",
        "--phase-c-root",
        str(phase_c),
        "--phase-d-root",
        str(phase_d),
        "--artifact-root",
        str(tmp_path / "f"),
    ]
    code, out = run_main(monkeypatch, capsys, *args, *extra)
    assert code == 2, (extra, out)
    assert "error:" in out.err and expected in out.err
    assert "Traceback" not in out.err + out.out
    assert not (tmp_path / "f").exists()


def test_the_cli_follows_the_designs_own_views(tmp_path, monkeypatch, capsys):
    """A design whose views are not named dense and sparse gets its iterative jobs (phase F once
    fell back to dense and sparse and, with missing views allowed, said nothing)."""
    phase_c, phase_d = _study(tmp_path, doses=(1000,), views=("close", "far"))
    design = tmp_path / "design.yaml"
    design.write_text(
        "views:\n"
        "  - {name: close, fraction: 0.7, rule: patch_linear}\n"
        "  - {name: far, fraction: 0.2, rule: patch_linear}\n"
    )
    code, out = run_main(
        monkeypatch,
        capsys,
        "reconstruct-iterative",
        "--phase-c-root",
        str(phase_c),
        "--phase-d-root",
        str(phase_d),
        "--artifact-root",
        str(tmp_path / "f"),
        "--config",
        str(design),
        "--engine",
        "cdtools",
        "--split",
        "test",
        "--dry-run",
    )
    assert code == 0, out.err
    listed = [line.split(":")[0] for line in out.out.splitlines() if "cdtools" in line]
    assert listed == [
        "dose 1000 baseline/test cdtools",
        "dose 1000 close/test cdtools",
        "dose 1000 far/test cdtools",
    ]


def test_a_job_folder_linked_out_of_the_artifact_root_is_refused(tmp_path):
    """Issue 27, item 2: the iterative phase never writes through a link out of its folder."""
    from ptypinn.io.artifacts import OutputError

    phase_c, phase_d = _study(tmp_path, doses=(1000,), views=("dense",))
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "f" / "dose_1000").mkdir(parents=True)
    (tmp_path / "f" / "dose_1000" / "baseline").symlink_to(outside)
    with pytest.raises(OutputError, match="a symbolic link leads it out of the output folder"):
        run_iterative_matrix(
            QUICK, phase_c, phase_d, tmp_path / "f", views=["baseline"], splits=["test"]
        )
    assert list(outside.iterdir()) == []
