import json

import pytest
from rich.console import Console

from ptypinn.study.design import make_design
from ptypinn.study.runner import STATE_FILE, report_path, run_study


def quiet() -> Console:
    return Console(file=open("/dev/null", "w"))  # noqa: SIM115


@pytest.fixture
def micro_design(patch_linear_views):
    """One dose, tiny object, one epoch, a few iterations: every phase runs in seconds."""
    return make_design({
        "name": "micro", "patch_size": 64, "doses": [1e4], "views": patch_linear_views,
        "simulation": {"object_size": 160, "scan": {"step_px": 8.0, "jitter_px": 1.0}},
        "training": {"width": 1, "epochs": 1, "batch_size": 8},
        "iterative": {"cdtools": {"iterations": 2}, "ptychi": {"iterations": 2}},
    })


@pytest.mark.slow
def test_study_runs_end_to_end_and_resume_skips_finished_steps(micro_design, tmp_path, capsys):
    state = run_study(micro_design, tmp_path, console=quiet())
    assert list(state["steps"]) == ["simulate", "overlap", "train", "iterative", "compare"]
    html = report_path(tmp_path).read_text()
    assert "PtychoPINN gs1" in html and "Measured overlap" in html
    rows = json.loads((tmp_path / "phase_g" / "metrics.json").read_text())
    methods = {r["method"] for r in rows}
    assert methods >= {"PtychoPINN gs1", "PtychoPINN gs2", "CDTools", "pty-chi LSQML"}

    finished = {name: step["finished"] for name, step in state["steps"].items()}
    console = Console(record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    again = run_study(micro_design, tmp_path, resume=True, console=console)
    assert console.export_text().count("unchanged, skipped") == 5
    assert {name: step["finished"] for name, step in again["steps"].items()} == finished

    (tmp_path / "phase_d" / "overlap_manifest.json").write_text("{}")  # a phase D touched by hand
    console = Console(record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    run_study(micro_design, tmp_path, resume=True, console=console)
    text = console.export_text()
    assert "simulate: unchanged, skipped" in text and "overlap: done" in text

    longer = micro_design.model_copy(update={"training": micro_design.training.model_copy(update={"epochs": 2})})
    console = Console(record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    third = run_study(longer, tmp_path, resume=True, console=console)
    text = console.export_text()
    # Only what depends on the training settings runs again.
    for step in ("simulate", "overlap", "iterative"):
        assert f"{step}: unchanged, skipped" in text
    assert "train: done" in text and "compare: done" in text
    assert json.loads((tmp_path / STATE_FILE).read_text())["steps"]["train"]["key"] == third["steps"]["train"]["key"]
