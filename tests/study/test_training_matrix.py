import json
import subprocess
import sys
from pathlib import Path

import pytest

from ptypinn.io.artifacts import OutputError, sha256_file
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.study.design import DesignError, make_design
from ptypinn.study.layout import SKIP_SUMMARY, TRAINING_MANIFEST, TRAINING_PREVIEW
from ptypinn.study.matrix import MissingDatasetError
from ptypinn.study.training import (
    JobConfig,
    JobOutcome,
    build_training_jobs,
    run_training_matrix,
)

from helpers import plain

DOSES = (1000, 10000, 100000)
VIEWS = ("dense", "sparse")


@pytest.fixture
def roots(fake_phases, tmp_path):
    return (*fake_phases(DOSES), tmp_path / "e")


def drop_sparse(phase_d: Path) -> None:
    for dose in DOSES:
        for split in ("train", "test"):
            (phase_d / f"dose_{dose}" / "sparse" / f"{split}.npz").unlink()


class Recorder:
    """A runner that records what it was given and writes a stand-in bundle."""

    def __init__(self, fail_view: str | None = None, interrupt_after: int | None = None):
        self.configs, self.fail_view, self.interrupt_after = [], fail_view, interrupt_after

    def __call__(self, config: JobConfig) -> JobOutcome:
        if len(self.configs) == self.interrupt_after:
            raise KeyboardInterrupt
        self.configs.append(config)
        if config.job.view == self.fail_view:
            raise RuntimeError("out of memory")
        bundle = config.job.artifact_dir / "model.pt"
        bundle.write_bytes(f"{config.job.view}{config.job.dose}".encode())
        return JobOutcome(bundle, -1.5, 3)


def test_matrix_has_nine_jobs_with_their_paths(roots):
    phase_c, phase_d, artifacts = roots
    jobs, skips = build_training_jobs(phase_c, phase_d, artifacts, VIEWS)
    assert skips == [] and len(jobs) == 9
    assert [(j.dose, j.view, j.gridsize) for j in jobs[:3]] == [
        (1e3, "baseline", 1),
        (1e3, "dense", 2),
        (1e3, "sparse", 2),
    ]
    sparse = jobs[8]
    assert sparse.train_path == phase_d / "dose_100000" / "sparse" / "train.npz"
    assert sparse.artifact_dir == artifacts / "dose_100000" / "sparse" / "gs2"
    assert sparse.log_path.parent == sparse.artifact_dir
    assert not artifacts.exists()  # building jobs creates nothing


def test_the_design_gridsizes_and_methods_decide_the_jobs(roots):
    phase_c, phase_d, artifacts = roots
    jobs, _ = build_training_jobs(
        phase_c, phase_d, artifacts, VIEWS, gridsizes=(1, 3), methods=("pinn", "supervised")
    )
    first_dose = [
        (j.view, j.gridsize, j.method, j.artifact_dir.name) for j in jobs if j.dose == 1e3
    ]
    assert first_dose == [
        ("baseline", 1, "pinn", "gs1"),
        ("baseline", 1, "supervised", "supervised_gs1"),
        ("dense", 3, "pinn", "gs3"),
        ("dense", 3, "supervised", "supervised_gs3"),
        ("sparse", 3, "pinn", "gs3"),
        ("sparse", 3, "supervised", "supervised_gs3"),
    ]
    views_only, _ = build_training_jobs(phase_c, phase_d, artifacts, VIEWS, gridsizes=(2,))
    assert {(j.view, j.gridsize) for j in views_only} == {("dense", 2), ("sparse", 2)}


def test_strict_mode_names_the_missing_view(roots):
    phase_c, phase_d, artifacts = roots
    drop_sparse(phase_d)
    with pytest.raises(MissingDatasetError, match="view 'sparse'.*sparse/train.npz"):
        build_training_jobs(phase_c, phase_d, artifacts, VIEWS)


def test_missing_views_are_skipped_and_reported_in_the_manifest(roots):
    phase_c, phase_d, artifacts = roots
    drop_sparse(phase_d)
    runner = Recorder()
    manifest = plain(
        run_training_matrix(
            make_design({}),
            phase_c,
            phase_d,
            artifacts,
            allow_missing_phase_d=True,
            runner=runner,
            options=TrainerOptions(logger="none"),
        )
    )
    assert manifest["job_count"] == 6 and manifest["skipped_count"] == 3
    assert [(s["dose"], s["view"]) for s in manifest["skipped_views"]] == [
        (float(d), "sparse") for d in DOSES
    ]
    on_disk = json.loads((artifacts / TRAINING_MANIFEST).read_text())
    assert on_disk["skipped_views"] == manifest["skipped_views"] and on_disk["skipped_count"] == 3
    assert json.loads((artifacts / SKIP_SUMMARY).read_text())["skipped_count"] == 3
    job = on_disk["jobs"][0]
    assert {
        "dose",
        "view",
        "gridsize",
        "train_path",
        "test_path",
        "status",
        "final_loss",
        "epochs",
        "key",
        "files",
    } <= set(job)
    bundle = job["files"]["bundle"]
    assert job["status"] == "ok" and bundle["path"] == "model.pt"
    assert bundle["sha256"] == sha256_file(Path(job["artifact_dir"]) / "model.pt")
    assert bundle["bytes"] == (Path(job["artifact_dir"]) / "model.pt").stat().st_size


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"doses": [1e4]}, {(1e4, "baseline"), (1e4, "dense"), (1e4, "sparse")}),
        ({"views": ["dense"]}, {(d, "dense") for d in (1e3, 1e4, 1e5)}),
        ({"gridsizes": [1]}, {(d, "baseline") for d in (1e3, 1e4, 1e5)}),
        (
            {"doses": [1e3, 1e5], "views": ["sparse"], "gridsizes": [2]},
            {(1e3, "sparse"), (1e5, "sparse")},
        ),
    ],
)
def test_filters_and_the_resolved_config(roots, filters, expected):
    phase_c, phase_d, artifacts = roots
    runner = Recorder()
    design = make_design({})
    manifest = plain(
        run_training_matrix(design, phase_c, phase_d, artifacts, runner=runner, **filters)
    )
    assert {(c.job.dose, c.job.view) for c in runner.configs} == expected
    assert manifest["enumerated_count"] == 9 and manifest["job_count"] == len(expected)
    for config in runner.configs:
        assert config.job.gridsize == (1 if config.job.view == "baseline" else 2)
        assert (
            config.job.train_path.name == "train.npz"
            and config.neighbor_count == design.neighbor_count
        )
        assert config.training.epochs == design.training.epochs and config.training.model == "pinn"


def test_dry_run_previews_without_running(roots):
    phase_c, phase_d, artifacts = roots
    runner = Recorder()
    manifest = plain(
        run_training_matrix(
            make_design({}),
            phase_c,
            phase_d,
            artifacts,
            dry_run=True,
            runner=runner,
            design_args=["--preset", "full"],
        )
    )
    assert runner.configs == [] and not list(artifacts.rglob("model.pt"))
    job = manifest["jobs"][0]
    assert (
        job["status"] == "dry-run"
        and job["config"]["dose"] == 1e3
        and job["config"]["method"] == "pinn"
    )
    assert job["command"].startswith("ptypinn train --train") and "--gridsize 1" in job["command"]
    assert sorted(path.name for path in artifacts.rglob("*")) == [
        TRAINING_PREVIEW
    ]  # no folder, no log, no manifest


def test_a_dry_run_never_touches_the_records_of_a_real_run(roots):
    phase_c, phase_d, artifacts = roots
    run_training_matrix(make_design({}), phase_c, phase_d, artifacts, runner=Recorder())
    before = {path: path.read_bytes() for path in artifacts.rglob("*") if path.is_file()}
    preview = plain(
        run_training_matrix(
            make_design({}),
            phase_c,
            phase_d,
            artifacts,
            dry_run=True,
            runner=Recorder(),
            doses=[1e4],
        )
    )
    assert {
        path: path.read_bytes()
        for path in artifacts.rglob("*")
        if path.is_file() and path.name != TRAINING_PREVIEW
    } == before
    assert json.loads((artifacts / TRAINING_PREVIEW).read_text())["jobs"] == json.loads(
        json.dumps(preview["jobs"])
    )
    for dry_run in (True, False):
        with pytest.raises(
            DesignError,
            match="no training job matches --dose 5; the matrix has doses 1000, 10000, 100000",
        ):
            run_training_matrix(
                make_design({}),
                phase_c,
                phase_d,
                artifacts,
                dry_run=dry_run,
                runner=Recorder(),
                doses=[5.0],
            )
    assert {
        path: path.read_bytes()
        for path in artifacts.rglob("*")
        if path.is_file() and path.name != TRAINING_PREVIEW
    } == before


def test_a_filtered_run_keeps_the_records_of_the_other_jobs(roots):
    phase_c, phase_d, artifacts = roots
    run_training_matrix(make_design({}), phase_c, phase_d, artifacts, runner=Recorder())
    again = Recorder()
    manifest = plain(
        run_training_matrix(make_design({}), phase_c, phase_d, artifacts, runner=again, doses=[1e4])
    )
    assert {c.job.dose for c in again.configs} == {1e4} and len(again.configs) == 3
    assert len(manifest["jobs"]) == 9 and manifest["job_count"] == 3
    assert [job["reused"] for job in manifest["jobs"]] == [
        dose != 1e4 for dose in (1e3, 1e4, 1e5) for _ in range(3)
    ]


def test_resume_trains_only_jobs_without_a_matching_record(roots):
    phase_c, phase_d, artifacts = roots
    with pytest.raises(KeyboardInterrupt):
        run_training_matrix(
            make_design({}), phase_c, phase_d, artifacts, runner=Recorder(interrupt_after=4)
        )
    on_disk = json.loads((artifacts / TRAINING_MANIFEST).read_text())
    assert [job["status"] for job in on_disk["jobs"]] == ["ok"] * 4  # written after every job
    (artifacts / "dose_1000" / "dense" / "gs2" / "model.pt").write_bytes(b"flipped")
    resumed = Recorder()
    manifest = plain(
        run_training_matrix(
            make_design({}), phase_c, phase_d, artifacts, runner=resumed, resume=True
        )
    )
    assert [(c.job.dose, c.job.view) for c in resumed.configs] == [
        (1e3, "dense"),
        (1e4, "dense"),
        (1e4, "sparse"),
    ] + [(1e5, view) for view in ("baseline", "dense", "sparse")]
    assert [job["reused"] for job in manifest["jobs"]][:4] == [True, False, True, True]
    longer = make_design({"training": {"epochs": 51}})
    changed = Recorder()
    run_training_matrix(longer, phase_c, phase_d, artifacts, runner=changed, resume=True)
    assert len(changed.configs) == 9  # other settings: nothing matches


def test_a_symlinked_log_is_replaced_not_followed(roots, tmp_path):
    phase_c, phase_d, artifacts = roots
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    folder = artifacts / "dose_1000" / "baseline" / "gs1"
    folder.mkdir(parents=True)
    (folder / "train.log").symlink_to(outside)
    run_training_matrix(
        make_design({}),
        phase_c,
        phase_d,
        artifacts,
        runner=Recorder(),
        doses=[1e3],
        views=["baseline"],
    )
    assert outside.read_text() == "precious"
    assert (
        not (folder / "train.log").is_symlink()
        and "ptypinn training job" in (folder / "train.log").read_text()
    )


def test_a_job_folder_linked_out_of_the_artifact_root_is_refused(roots, tmp_path):
    phase_c, phase_d, artifacts = roots
    (tmp_path / "elsewhere").mkdir()
    (artifacts / "dose_1000").mkdir(parents=True)
    (artifacts / "dose_1000" / "baseline").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputError, match="leads it out of the output folder"):
        run_training_matrix(make_design({}), phase_c, phase_d, artifacts, runner=Recorder())
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_failed_job_is_logged_and_the_others_still_run(roots):
    phase_c, phase_d, artifacts = roots
    runner = Recorder(fail_view="dense")
    manifest = plain(
        run_training_matrix(make_design({}), phase_c, phase_d, artifacts, runner=runner)
    )
    statuses = [job["status"] for job in manifest["jobs"]]
    assert (
        statuses.count("failed") == 3
        and statuses.count("ok") == 6
        and manifest["failed_count"] == 3
    )
    failed = next(job for job in manifest["jobs"] if job["status"] == "failed")
    assert (
        "out of memory" in failed["error"]
        and "RuntimeError: out of memory" in Path(failed["log_path"]).read_text()
    )


@pytest.mark.slow
def test_real_run_of_the_smallest_job_is_deterministic(tmp_path):
    """`python -m ptypinn train-matrix` on the smoke preset over a 128 px object (about 90 training
    patterns), twice: same losses, bundle hash in the manifest."""
    from ptypinn.study.design import preset
    from ptypinn.study.simulate import run_simulation

    smoke = preset("smoke")
    design = smoke.model_copy(
        update={"simulation": smoke.simulation.model_copy(update={"object_size": 128})}
    )
    config = design.save(tmp_path / "design.yaml")
    phase_c = tmp_path / "c"
    run_simulation(design, phase_c, doses=[1000])
    losses = []
    for run in ("a", "b"):
        out = tmp_path / run
        command = [
            sys.executable,
            "-m",
            "ptypinn",
            "train-matrix",
            "--phase-c-root",
            str(phase_c),
            "--phase-d-root",
            str(tmp_path / "d"),
            "--artifact-root",
            str(out),
            "--config",
            str(config),
            "--view",
            "baseline",
            "--allow-missing-phase-d",
            "--accelerator",
            "cpu",
            "--deterministic",
            "--num-workers",
            "0",
            "--logger",
            "csv",
            "--max-epochs",
            "1",
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        manifest = json.loads((out / TRAINING_MANIFEST).read_text())
        (job,) = manifest["jobs"]
        assert job["status"] == "ok" and job["epochs"] == 1
        bundle = job["files"]["bundle"]
        assert bundle["sha256"] == sha256_file(Path(job["artifact_dir"]) / bundle["path"])
        assert manifest["skipped_count"] == 2  # dense and sparse were never made
        losses.append(job["final_loss"])
    assert losses[0] == losses[1]


def test_jobs_sent_to_an_executor_give_the_same_manifest(roots, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    phase_c, phase_d, _ = roots
    local = plain(
        run_training_matrix(
            make_design({}), phase_c, phase_d, tmp_path / "local", runner=Recorder()
        )
    )
    with ThreadPoolExecutor(max_workers=3) as pool:
        remote = plain(
            run_training_matrix(
                make_design({}),
                phase_c,
                phase_d,
                tmp_path / "pool",
                runner=Recorder(),
                executor=pool,
            )
        )

    def strip(manifest):
        return [
            (j["dose"], j["view"], j["status"], j["final_loss"], j["files"]["bundle"]["sha256"])
            for j in manifest["jobs"]
        ]

    assert strip(local) == strip(remote) and len(remote["jobs"]) == 9
