import dataclasses
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from rich.console import Console

from ptypinn.io.artifacts import sha256_file
from ptypinn.io.dataset import load_dataset
from ptypinn.io.reconstruction import read_reconstruction, starting_object
from ptypinn.study.compare import TIME_TO_QUALITY_FILE
from ptypinn.study.design import make_design, with_inputs, with_iterative
from ptypinn.study.infer import warm_started
from ptypinn.study.layout import INFERENCE_MANIFEST, RECONSTRUCTION_MANIFEST, TRAINING_MANIFEST
from ptypinn.study.records import InferenceManifest, ReconstructionManifest, read_manifest
from ptypinn.study.runner import STATE_FILE, report_path, run_study


def quiet() -> Console:
    return Console(file=open("/dev/null", "w"))  # noqa: SIM115


@pytest.fixture
def micro_design(patch_linear_views):
    """One dose, tiny object, one epoch, a few iterations: every phase runs in seconds."""
    return make_design(
        {
            "name": "micro",
            "patch_size": 64,
            "doses": [1e4],
            "views": patch_linear_views,
            "simulation": {"object_size": 160, "scan": {"step_px": 8.0, "jitter_px": 1.0}},
            "training": {"width": 1, "epochs": 1, "batch_size": 8},
            "iterative": {"cdtools": {"iterations": 2}, "ptychi": {"iterations": 2}},
        }
    )


@pytest.mark.slow
def test_study_runs_end_to_end_and_resume_skips_finished_steps(micro_design, tmp_path, capsys):
    state = run_study(micro_design, tmp_path, console=quiet())
    assert list(state["steps"]) == ["simulate", "overlap", "train", "iterative", "infer", "compare"]
    html = report_path(tmp_path).read_text()
    assert "PtychoPINN gs1" in html and "Measured overlap" in html
    rows = json.loads((tmp_path / "phase_g" / "metrics.json").read_text())
    methods = {r["method"] for r in rows}
    assert methods >= {"PtychoPINN gs1", "PtychoPINN gs2", "CDTools", "pty-chi LSQML"}

    finished = {name: step["finished"] for name, step in state["steps"].items()}
    console = Console(record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    again = run_study(micro_design, tmp_path, resume=True, console=console)
    assert console.export_text().count("unchanged, skipped") == 6
    assert {name: step["finished"] for name, step in again["steps"].items()} == finished

    (tmp_path / "phase_d" / "overlap_manifest.json").write_text("{}")  # a phase D touched by hand
    console = Console(record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    run_study(micro_design, tmp_path, resume=True, console=console)
    text = console.export_text()
    assert "simulate: unchanged, skipped" in text and "overlap: done" in text

    longer = micro_design.model_copy(
        update={"training": micro_design.training.model_copy(update={"epochs": 2})}
    )
    console = Console(record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    third = run_study(longer, tmp_path, resume=True, console=console)
    text = console.export_text()
    # Only what depends on the training settings runs again.
    for step in ("simulate", "overlap", "iterative"):
        assert f"{step}: unchanged, skipped" in text
    assert "train: done" in text and "compare: done" in text
    assert (
        json.loads((tmp_path / STATE_FILE).read_text())["steps"]["train"]["key"]
        == third["steps"]["train"]["key"]
    )

    # Files that no longer match their record: only the steps (and jobs) that own them run again.
    bundle = tmp_path / "phase_e" / "dose_10000" / "dense" / "gs2" / "model.pt"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    (
        tmp_path / "phase_f" / "dose_10000" / "baseline" / "test" / "cdtools" / "reconstruction.npz"
    ).unlink()
    (tmp_path / "phase_g" / "metrics.json").write_text("")
    console = Console(record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    run_study(longer, tmp_path, resume=True, console=console)
    text = console.export_text()
    assert "train: phase_e/dose_10000/dense/gs2/model.pt differs from its record" in text
    assert (
        "iterative: phase_f/dose_10000/baseline/test/cdtools/reconstruction.npz "
        "differs from its record" in text
    )
    assert "simulate: unchanged, skipped" in text and "compare: done" in text
    jobs = json.loads((tmp_path / "phase_e" / TRAINING_MANIFEST).read_text())["jobs"]
    assert [(job["view"], job["reused"]) for job in jobs] == [("baseline", True), ("dense", False)]
    assert json.loads((tmp_path / "phase_g" / "metrics.json").read_text())

    # A new design in the old folder starts clean: nothing of the first design is left to mix in.
    other = longer.model_copy(update={"doses": (1e3,)})
    console = Console(record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    run_study(other, tmp_path, resume=True, console=console)
    assert "simulate: starting clean" in console.export_text()
    for phase in ("phase_c", "phase_d", "phase_e", "inference", "phase_f", "phase_g"):
        assert not list((tmp_path / phase).rglob("dose_10000*")), phase
    rows = json.loads((tmp_path / "phase_g" / "metrics.json").read_text())
    assert {row["dose"] for row in rows} == {1e3}


@pytest.mark.slow
def test_an_interrupted_study_resumes_where_it_stopped(micro_design, tmp_path):
    """Ctrl-C during training: one message, status 130; --resume keeps the finished jobs."""
    # Two doses: five training jobs still to run when the first is recorded, so the interrupt
    # lands in training however slowly this test's own polling is scheduled.
    design = micro_design.model_copy(
        update={
            "doses": (1e3, 1e4),
            "training": micro_design.training.model_copy(update={"epochs": 4}),
        }
    )
    config = design.save(tmp_path / "design.yaml")
    command = [
        sys.executable,
        "-m",
        "ptypinn",
        "study",
        "run",
        "--config",
        str(config),
        "--output",
        str(tmp_path / "s"),
    ]
    manifest = tmp_path / "s" / "phase_e" / TRAINING_MANIFEST
    with open(tmp_path / "first.log", "w") as log:
        # Ctrl-C's default meaning in the child, whatever this test process inherited
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 600
        while not (manifest.is_file() and json.loads(manifest.read_text())["jobs"]):
            assert process.poll() is None and time.monotonic() < deadline, (
                "training never finished a job"
            )
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert (
        stderr.count("error:") == 1
        and "interrupted; finished work is kept" in stderr
        and "Traceback" not in stderr
    )
    finished = json.loads(manifest.read_text())["jobs"]
    assert [job["status"] for job in finished] == ["ok"]
    state = json.loads((tmp_path / "s" / STATE_FILE).read_text())["steps"]
    assert "finished" in state["overlap"] and "finished" not in state["train"]

    done = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert (
        "simulate: unchanged, skipped" in done.stdout
        and "overlap: unchanged, skipped" in done.stdout
    )
    assert "train: interrupted last time; continuing" in done.stdout
    jobs = json.loads(manifest.read_text())["jobs"]
    assert jobs[0]["reused"] and jobs[0]["files"]["bundle"] == finished[0]["files"]["bundle"]
    assert [job["reused"] for job in jobs[1:]] == [False] * (len(jobs) - 1) and len(jobs) >= 2
    assert report_path(tmp_path / "s").is_file()


@pytest.mark.slow
def test_the_design_gridsizes_and_methods_drive_training_and_the_comparison(tmp_path):
    """gridsizes [1, 3] and methods [pinn, supervised]: gs1 on the full scan, gs3 on the view,
    both methods each, and every one of them a row of the comparison."""
    design = make_design(
        {
            "name": "gs13",
            "patch_size": 64,
            "doses": [1e4],
            "gridsizes": [1, 3],
            "neighbor_count": 9,
            "methods": ["pinn", "supervised"],
            "views": [{"name": "dense", "fraction": 0.7, "rule": "patch_linear"}],
            "simulation": {"object_size": 256, "scan": {"step_px": 8.0, "jitter_px": 1.0}},
            "training": {"width": 1, "samples": 16, "batch_size": 8},
            "iterative": {"engines": ["cdtools"], "cdtools": {"iterations": 1}},
        }
    )
    run_study(design, tmp_path, console=quiet())
    jobs = json.loads((tmp_path / "phase_e" / TRAINING_MANIFEST).read_text())["jobs"]
    trained = {(job["view"], job["gridsize"], job["method"], job["status"]) for job in jobs}
    assert trained == {
        ("baseline", 1, "pinn", "ok"),
        ("baseline", 1, "supervised", "ok"),
        ("dense", 3, "pinn", "ok"),
        ("dense", 3, "supervised", "ok"),
    }
    rows = json.loads((tmp_path / "phase_g" / "metrics.json").read_text())
    dense = {row["method"] for row in rows if row["view"] == "dense"}
    # each PtychoPINN model (retrieval inputs, the default) beside its input alone
    assert dense == {
        "PtychoPINN gs3",
        "PtychoPINN gs3 input alone",
        "supervised gs3",
        "PtychoPINN gs1",
        "PtychoPINN gs1 input alone",
        "supervised gs1",
        "CDTools",
    }


@pytest.mark.slow
def test_a_study_on_the_users_probe_resumes_and_reruns_when_the_file_changes(
    micro_design, tmp_path
):
    design = with_iterative(micro_design, ["cdtools"])
    probe_file = tmp_path / "probe.npz"
    probe = design.simulation.probe.build(design.patch_size)
    np.savez(probe_file, probeGuess=probe)
    design = with_inputs(design, probe_file=probe_file)
    output = tmp_path / "study"
    state = run_study(design, output, console=quiet())
    digest = sha256_file(probe_file)
    manifest = json.loads((output / "phase_c" / "simulation_manifest.json").read_text())
    assert manifest["source"]["probe_file_sha256"] == digest
    assert digest in report_path(output).read_text()

    def resumed() -> str:
        console = Console(record=True, file=open("/dev/null", "w"))  # noqa: SIM115
        run_study(design, output, resume=True, console=console)
        return console.export_text()

    assert resumed().count("unchanged, skipped") == 6  # nothing runs again

    np.savez(probe_file, probeGuess=probe * np.exp(0.5j * np.linspace(-1, 1, 64))[None, :])
    text = resumed()
    assert "unchanged, skipped" not in text  # from phase C on, every step runs again
    assert all(f"{step}: done" in text for step in state["steps"])
    manifest = json.loads((output / "phase_c" / "simulation_manifest.json").read_text())
    assert manifest["source"]["probe_file_sha256"] == sha256_file(probe_file) != digest


# --------------------------------------------------------------------------------------------
# The runner's bookkeeping, with quick steps in place of the phases (issue 27, items 2, 3, 7)


def quick_steps(started=None, release=None):
    """Two steps that write one file each (and a manifest) under their folders; the first waits
    for ``release`` after setting ``started``, when given."""
    from ptypinn.study.runner import Step

    def writer(folder, manifest):
        def run(design, root, executor, resume):
            if started is not None:
                started.set()
                assert release.wait(60)
            (root / folder).mkdir(parents=True, exist_ok=True)
            (root / folder / "out.txt").write_text(f"doses {design.doses}")
            (root / folder / manifest).write_text("{}")
            return []

        return run

    return (
        Step("first", "phase_c", "m.json", (), ("doses",), writer("phase_c", "m.json")),
        Step("second", "phase_e", "n.json", (), ("doses",), writer("phase_e", "n.json")),
    )


def test_hand_placed_files_are_never_outputs_and_survive_design_changes(
    micro_design, tmp_path, monkeypatch
):
    from ptypinn.study import runner

    monkeypatch.setattr(runner, "STEPS", quick_steps())
    run_study(micro_design, tmp_path, console=quiet())
    (tmp_path / "phase_e" / "NOTES.txt").write_text("mine")
    (tmp_path / "phase_c" / "mynotes.txt").write_text("mine too")
    for doses in ((2e4,), (3e4,)):  # two design changes: each step starts clean
        state = run_study(
            micro_design.model_copy(update={"doses": doses}), tmp_path, console=quiet()
        )
        assert state["steps"]["second"]["outputs"].keys() == {"out.txt", "n.json"}
        assert state["steps"]["first"]["outputs"].keys() == {"out.txt", "m.json"}
    assert (tmp_path / "phase_e" / "NOTES.txt").read_text() == "mine"
    assert (tmp_path / "phase_c" / "mynotes.txt").read_text() == "mine too"
    assert (tmp_path / "phase_e" / "out.txt").read_text() == "doses (30000.0,)"


def test_a_second_run_on_a_study_folder_is_refused_at_once(micro_design, tmp_path, monkeypatch):
    """While one run works, a second `study run` on the folder exits 2 naming the first's PID;
    the first then completes with a consistent state."""
    import os
    import threading

    from ptypinn.study import runner

    started, release = threading.Event(), threading.Event()
    monkeypatch.setattr(runner, "STEPS", quick_steps(started, release))
    result = {}
    first = threading.Thread(
        target=lambda: result.update(run_study(micro_design, tmp_path, console=quiet()))
    )
    first.start()
    try:
        assert started.wait(60)
        command = [sys.executable, "-m", "ptypinn", "study", "run", "--output", str(tmp_path)]
        begin = time.monotonic()
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert f"in use by process {os.getpid()}" in second.stderr
        assert "Traceback" not in second.stderr and second.stderr.count("error:") == 1
        assert time.monotonic() - begin < 60
    finally:
        release.set()
        first.join(60)
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state == result and all("finished" in step for step in state["steps"].values())
    assert not (tmp_path / ".ptypinn.lock").exists()


def test_the_trainer_options_reach_the_training_jobs(micro_design, tmp_path, monkeypatch):
    """Where training runs (accelerator, precision, ...) goes to phase E as given, without
    checkpoints or a progress bar per job; by default the CPU with CSV logs."""
    from types import SimpleNamespace

    from ptypinn.pinn.runtime import TrainerOptions
    from ptypinn.study import runner, training

    seen = []

    def fake_matrix(design, phase_c, phase_d, phase_e, **kwargs):
        seen.append(kwargs["options"])
        phase_e.mkdir(parents=True, exist_ok=True)
        (phase_e / TRAINING_MANIFEST).write_text("{}")
        return SimpleNamespace(jobs=[])  # no job failed

    monkeypatch.setattr(training, "run_training_matrix", fake_matrix)
    train = next(step for step in runner.STEPS if step.name == "train")
    monkeypatch.setattr(runner, "STEPS", (dataclasses.replace(train, reads=()),))
    given = TrainerOptions(accelerator="cpu", deterministic=False, precision="32-true")
    run_study(micro_design, tmp_path / "given", console=quiet(), trainer=given)
    run_study(micro_design, tmp_path / "default", console=quiet())
    assert seen == [
        dataclasses.replace(given, checkpoints=False, progress=False),
        TrainerOptions(logger="csv", checkpoints=False, progress=False),
    ]


def test_a_phase_folder_linked_out_of_the_study_is_refused(micro_design, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "phase_g").symlink_to(outside)
    with pytest.raises(Exception, match="a symbolic link leads it out of the output folder"):
        run_study(micro_design, tmp_path / "s", console=quiet())
    assert list(outside.iterdir()) == []


@pytest.mark.slow
def test_a_warm_started_engine_starts_from_the_pinn_reconstruction_never_the_truth(
    micro_design, tmp_path
):
    values = micro_design.to_dict()
    values["iterative"].update(engines=["cdtools"], warm_start=["cdtools"])
    values["iterative"]["cdtools"]["iterations"] = 2
    design = make_design(values)
    run_study(design, tmp_path, console=quiet())
    rows = json.loads((tmp_path / "phase_g" / "metrics.json").read_text())
    methods = {(row["view"], row["method"]) for row in rows}
    assert ("baseline", "CDTools from PtychoPINN gs1") in methods
    assert ("dense", "CDTools from PtychoPINN gs2") in methods
    manifest = read_manifest(InferenceManifest, tmp_path / "inference" / INFERENCE_MANIFEST)
    records = {(job.view, job.method.label): job for job in manifest.jobs}
    warm = records["baseline", "CDTools from PtychoPINN gs1"]
    pinn = records["baseline", "PtychoPINN gs1"]
    assert warm.status == "ok" and warm.iterations == 2
    # The same start with the test file's ground truth poisoned: the same reconstruction.
    test = load_dataset(tmp_path / "phase_c" / "dose_10000" / "test.npz")
    start = read_reconstruction(tmp_path / "inference" / pinn.files["reconstruction"].path)
    options = design.iterative.cdtools.model_copy(update={"checkpoints": (0,)})
    clean = warm_started("cdtools", options, start, test, "PtychoPINN gs1")
    poisoned = dataclasses.replace(test, obj=np.full_like(test.obj, np.nan))
    again = warm_started("cdtools", options, start, poisoned, "PtychoPINN gs1")
    np.testing.assert_array_equal(again.obj, clean.obj)
    np.testing.assert_allclose(clean.snapshots[0].obj, starting_object(start), rtol=0, atol=1e-6)
    written = read_reconstruction(tmp_path / "inference" / warm.files["reconstruction"].path)
    np.testing.assert_allclose(written.obj, clean.obj, rtol=0, atol=1e-6)

    # Time to quality: both runs record the design's checkpoints within their 2 iterations, in
    # increasing seconds (the warm one's counted from the network's start), and the cold curve's
    # last point is phase G's score of that reconstruction.
    cold = read_manifest(ReconstructionManifest, tmp_path / "phase_f" / RECONSTRUCTION_MANIFEST)
    (cdtools,) = [job for job in cold.jobs if job.view == "baseline" and job.split == "test"]
    for curve in (cdtools.curve, warm.curve):
        assert [point.iteration for point in curve] == [0, 1, 2]
        assert all(a.seconds < b.seconds for a, b in zip(curve, curve[1:], strict=False))
    assert warm.curve[-1].seconds == pytest.approx(warm.wall_time_s, abs=0.5)
    # the network's time is included: the warm start's clock reads its pass before iteration 0
    # (the other jobs run beside it, so its seconds are compared within the job, not with the
    # PtychoPINN job's)
    assert warm.curve[0].seconds > 100 * cdtools.curve[0].seconds
    aggregate = json.loads((tmp_path / "phase_g" / "aggregate.json").read_text())
    (scored,) = [
        row for row in aggregate["phase"] if (row["view"], row["method"]) == ("baseline", "CDTools")
    ]
    assert cdtools.curve[-1].phase_ssim == pytest.approx(scored["ssim"], abs=1e-9)
    quality = json.loads((tmp_path / "phase_g" / TIME_TO_QUALITY_FILE).read_text())
    assert {row["method"] for row in quality["warm"]} == {
        "CDTools from PtychoPINN gs1",
        "CDTools from PtychoPINN gs2",
    }
    assert "Time to quality" in report_path(tmp_path).read_text()
