"""The inference phase: methods named by typed keys, their plain folders, their records."""

import json
import re

from ptypinn.study.design import make_design
from ptypinn.study.infer import method_keys, run_inference
from ptypinn.study.layout import INFERENCE_MANIFEST
from ptypinn.study.records import InferenceManifest, MethodKey, read_manifest
from ptypinn.study.simulate import run_simulation


def test_every_method_of_a_view_has_a_key_a_label_and_a_plain_folder():
    design = make_design(
        {"methods": ["pinn", "supervised"], "training": {"refine_steps": 5}, "gridsizes": [1, 2]}
    )
    dense = method_keys(design, "dense")
    assert [key.label for key in dense] == [
        "PtychoPINN gs2",
        "PtychoPINN gs2 input alone",
        "PtychoPINN gs2 + refine",
        "PtychoPINN gs1",
        "PtychoPINN gs1 input alone",
        "supervised gs2",
        "supervised gs1",
        "CDTools",
        "pty-chi LSQML",
    ]
    folders = [key.folder for key in dense]
    assert folders[:3] == [
        "ptychopinn_gs2",
        "ptychopinn_gs2_input_alone",
        "ptychopinn_gs2_refine",
    ]
    assert len(set(folders)) == len(folders)
    assert all(re.fullmatch(r"[a-z0-9_-]+", folder) for folder in folders)
    baseline = method_keys(design, "baseline")
    assert [key.label for key in baseline][:3] == [
        "PtychoPINN gs1",
        "PtychoPINN gs1 input alone",
        "PtychoPINN gs1 + refine",
    ]


def test_a_key_can_name_an_engine_warm_started_from_another_method():
    start = MethodKey(kind="ptychopinn", recipe="pinn", gridsize=1)
    warm = MethodKey(kind="engine", recipe="cdtools", init=start)
    assert warm.folder == "cdtools_from_ptychopinn_gs1"
    assert warm.label == "CDTools from PtychoPINN gs1"
    assert MethodKey.model_validate(json.loads(warm.model_dump_json())) == warm
    assert start.model_copy(update={"refine": True}).model == start


def test_methods_without_a_trained_model_are_recorded_not_raised(tiny_design, tmp_path):
    design = tiny_design.model_copy(update={"doses": (1e4,)})
    run_simulation(design, tmp_path / "c")
    manifest = run_inference(design, tmp_path / "c", tmp_path / "d", tmp_path / "e", tmp_path / "i")
    assert read_manifest(InferenceManifest, tmp_path / "i" / INFERENCE_MANIFEST) == manifest
    statuses = {job.method.label: (job.status, job.error) for job in manifest.jobs}
    assert statuses["PtychoPINN gs1"][0] == "failed"
    assert statuses["PtychoPINN gs1"][1].startswith("no PtychoPINN gs1 model (")
    assert statuses["PtychoPINN gs1 input alone"][0] == "skipped"
    assert {job.view for job in manifest.jobs} == {"baseline"}  # phase D was never run
    assert manifest.failed_count == sum(job.status == "failed" for job in manifest.jobs)
    assert not list((tmp_path / "i").rglob("*.npz"))


def test_a_warm_started_engine_is_its_own_method_started_by_the_views_model():
    design = make_design({"iterative": {"warm_start": ["cdtools", "ptychi"]}})
    dense = method_keys(design, "dense")
    warm = [key for key in dense if key.init is not None]
    assert [key.label for key in warm] == [
        "CDTools from PtychoPINN gs2",
        "pty-chi LSQML from PtychoPINN gs2",
    ]
    assert [key.folder for key in warm] == [
        "cdtools_from_ptychopinn_gs2",
        "ptychi_from_ptychopinn_gs2",
    ]
    baseline = [key for key in method_keys(design, "baseline") if key.init is not None]
    assert {key.init.label for key in baseline} == {"PtychoPINN gs1"}
    assert not [key for key in method_keys(make_design({}), "dense") if key.init is not None]
