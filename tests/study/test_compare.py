import json

import numpy as np
import pytest

from ptypinn.io.artifacts import sha256_file
from ptypinn.io.dataset import load_dataset
from ptypinn.io.reconstruction import Reconstruction, write_reconstruction
from ptypinn.pinn.config import ModelSpec
from ptypinn.study.compare import (
    compare_view,
    generator_inputs,
    network_gain,
    run_comparison,
)
from ptypinn.study.design import (
    DEFAULT_PROBE_NOTE,
    ProbeConfig,
    make_design,
    merged,
    with_inputs,
)
from ptypinn.study.infer import run_inference
from ptypinn.study.layout import split_path
from ptypinn.study.records import MethodKey
from ptypinn.study.scoring import scored_region
from ptypinn.study.simulate import run_simulation

from helpers import plain


@pytest.fixture
def phase_c(tiny_design, tmp_path):
    design = tiny_design.model_copy(update={"doses": (1e4,)})
    run_simulation(design, tmp_path / "c")
    return design, tmp_path / "c"


def fake_iterative(root, test_path, engine="cdtools", dataset_sha256=None):
    """A phase F result that is the truth up to a global phase: it must score as perfect."""
    test = load_dataset(test_path)
    obj = (test.obj * np.exp(1j * 0.7)).astype(np.complex64)
    metadata = {"dataset_sha256": dataset_sha256 or sha256_file(test_path)}
    rec = Reconstruction(
        engine,
        obj,
        test.probe,
        test.positions,
        test.geometry,
        np.ones(4),
        iterations=4,
        wall_time_s=2.0,
        metadata=metadata,
    )
    folder = root / "dose_10000" / "baseline" / "test" / engine
    write_reconstruction(folder / "reconstruction.npz", rec)


def test_scored_region_is_the_illuminated_part_of_the_test_scan(phase_c):
    _, root = phase_c
    test = load_dataset(split_path(root, 1e4, "test"))
    region = scored_region(test)
    rows = np.flatnonzero(region.any(axis=1))
    assert rows.min() >= test.ycoords.min() - 32 and rows.max() <= test.ycoords.max() + 32
    assert not region[: int(test.ycoords.min()) - 20].any()  # nothing from the training half


def test_a_perfect_reconstruction_scores_one_and_missing_models_are_reported(phase_c, tmp_path):
    design, root = phase_c
    test_path = split_path(root, 1e4, "test")
    fake_iterative(tmp_path / "f", test_path)
    run_inference(design, root, tmp_path / "d", tmp_path / "e", tmp_path / "i")  # no models
    result = compare_view(design, 1e4, "baseline", test_path, tmp_path / "i", tmp_path / "f")
    rows = [r for r in result.rows if r["method"] == "CDTools"]
    scores = {(r["component"], r["metric"]): r["value"] for r in rows}
    assert scores[("phase", "ssim")] > 0.99 and scores[("amplitude", "ssim")] > 0.99
    assert scores[("phase", "mae")] < 1e-3
    assert any("no PtychoPINN gs1 model" in line for line in result.missing)
    assert any("no pty-chi LSQML reconstruction of the test split" in n for n in result.missing)
    assert result.timings[0]["seconds"] == 2.0
    assert result.timings[0]["seconds_per_iteration"] == 0.5

    fake_iterative(tmp_path / "f2", test_path, dataset_sha256="0" * 64)  # of other test data
    stale = compare_view(design, 1e4, "baseline", test_path, tmp_path / "i", tmp_path / "f2")
    assert stale.rows == [] and any("made from other test data" in line for line in stale.missing)


def test_report_lists_tables_and_embeds_figures(phase_c, tmp_path):
    design, root = phase_c
    for engine in ("cdtools", "ptychi"):
        fake_iterative(tmp_path / "f", split_path(root, 1e4, "test"), engine)
    manifest = plain(
        run_comparison(
            design,
            root,
            tmp_path / "d",
            tmp_path / "e",
            tmp_path / "i",
            tmp_path / "f",
            tmp_path / "g",
            notes=["a note"],
        )
    )
    html = (tmp_path / "g" / "report.html").read_text()
    assert "data:image/png;base64," in html and "a note" in html
    assert "CDTools" in html and "pty-chi LSQML" in html  # each engine is its own method
    rows = json.loads((tmp_path / "g" / "metrics.json").read_text())
    assert {r["method"] for r in rows} == {"CDTools", "pty-chi LSQML"}
    assert manifest["rows"] == len(rows)
    assert (
        (tmp_path / "g" / "metrics.csv")
        .read_text()
        .startswith("dose,view,method,component,metric,value")
    )


def test_the_tables_say_which_recipe_and_what_the_generator_does_with_each_pattern():
    def generator_inputs_of(**fields):
        base = {
            "patch_size": 64,
            "gridsize": 1,
            "width": 2,
            "group_generator": "shared",
            "correction": False,
            "unrolled_steps": 0,
            "retrieval_iterations": 20,
        }
        return generator_inputs(ModelSpec(**{**base, **fields}))

    corrected = {"generator": "resnet", "inputs": "retrieval", "retrieval_iterations": 20}
    assert generator_inputs_of(**corrected, correction=True) == (
        "ptypinn recipe: resnet generator correcting a 20-iteration single-pattern retrieval"
    )
    assert generator_inputs_of(**corrected, correction=False) == (
        "ptypinn recipe: resnet generator on a 20-iteration single-pattern retrieval"
    )
    grouped = {**corrected, "inputs": "group_retrieval", "gridsize": 2, "correction": True}
    assert generator_inputs_of(**grouped) == (
        "ptypinn recipe: resnet generator correcting a 20-iteration group retrieval "
        "(4 patterns on one canvas)"
    )
    assert generator_inputs_of(**{**grouped, "unrolled_steps": 2}).endswith(
        "(4 patterns on one canvas), then 2 unrolled physics steps with learned corrections"
    )
    published = {"generator": "cnn", "inputs": "amplitude", "gridsize": 2}
    assert generator_inputs_of(**published, group_generator="channels") == (
        "published recipe: cnn generator on amplitude inputs"
    )
    assert generator_inputs_of(**published, group_generator="shared") == (
        "ptypinn recipe: cnn generator on amplitude inputs"
    )


def test_the_network_gain_is_each_models_score_less_its_inputs():
    phase = [
        {"dose": 1e4, "view": "dense", "method": "PtychoPINN gs2", "ssim": 0.70},
        {"dose": 1e4, "view": "dense", "method": "PtychoPINN gs2 + refine", "ssim": 0.72},
        {"dose": 1e4, "view": "dense", "method": "PtychoPINN gs2 input alone", "ssim": 0.66},
        {"dose": 1e4, "view": "dense", "method": "PtychoPINN gs1", "ssim": 0.60},
        {"dose": 1e4, "view": "dense", "method": "CDTools", "ssim": 0.80},
    ]
    keys = [
        MethodKey(kind="ptychopinn", recipe="pinn", gridsize=2),
        MethodKey(kind="ptychopinn", recipe="pinn", gridsize=2, refine=True),
        MethodKey(kind="ptychopinn", recipe="pinn", gridsize=2, input_alone=True),
        MethodKey(kind="ptychopinn", recipe="pinn", gridsize=1),
        MethodKey(kind="engine", recipe="cdtools"),
    ]
    assert [key.label for key in keys] == [row["method"] for row in phase]
    rows = network_gain(phase, {key.label: key for key in keys})
    assert [(r["method"], r["input_alone_ssim"]) for r in rows] == [
        ("PtychoPINN gs2", 0.66),
        ("PtychoPINN gs2 + refine", 0.66),
    ]
    assert [r["gain"] for r in rows] == pytest.approx([0.04, 0.06])


def test_the_report_shows_the_users_probe_its_file_sha256_and_footprint(tiny_design, tmp_path):
    # a flat disk of radius 12 px: its footprint is the disk, D = 2 sqrt(area / pi) ~ 24 px
    yy, xx = np.mgrid[:64, :64] - 32
    probe = np.where(np.hypot(xx, yy) <= 12, np.exp(0.1j * xx), 0).astype(np.complex64)
    np.savez(tmp_path / "probe.npz", probeGuess=probe)
    design = with_inputs(
        tiny_design.model_copy(update={"doses": (1e4,)}), None, tmp_path / "probe.npz"
    )
    markdown = report_of(design, tmp_path)
    assert "## Object and probe" in markdown
    assert sha256_file(tmp_path / "probe.npz") in markdown and "kind file" in markdown
    diameter = 2 * np.sqrt(np.count_nonzero(probe) / np.pi)
    assert f"D = {diameter:.1f} px" in markdown and 23.5 < diameter < 24.5
    assert "figures/probe.png" in markdown and (tmp_path / "g" / "figures" / "probe.png").is_file()


def probe_report(tiny_design, tmp_path, probe: dict) -> str:
    """The report of a study on ``tiny_design`` with ``probe`` (fake engines, no training)."""
    design = make_design(
        merged(tiny_design.to_dict(), {"doses": [1e4], "simulation": {"probe": probe}})
    )
    return report_of(design, tmp_path)


def report_of(design, tmp_path) -> str:
    """The report of a study on ``design`` at dose 1e4 (simulated, fake engines, no training)."""
    run_simulation(design, tmp_path / "c")
    fake_iterative(tmp_path / "f", split_path(tmp_path / "c", 1e4, "test"))
    run_comparison(
        design,
        tmp_path / "c",
        tmp_path / "d",
        tmp_path / "e",
        tmp_path / "i",
        tmp_path / "f",
        tmp_path / "g",
    )
    return (tmp_path / "g" / "report.md").read_text()


def test_the_report_states_a_model_probes_parameters(tiny_design, tmp_path):
    markdown = probe_report(tiny_design, tmp_path, {"kind": "zone_plate", "central_stop": 0.4})
    stated = "kind zone_plate, diameter_fraction 0.5, pupil_fraction 0.5, central_stop 0.4"
    assert markdown.count(stated) == 2  # the design table and the probe section
    section = markdown.split("## Object and probe")[1].split("##")[0]
    assert "SHA-256" not in section and "why this probe" not in section  # not the default


def test_the_report_says_why_the_default_probe_is_the_default(tiny_design, tmp_path):
    markdown = probe_report(tiny_design, tmp_path, ProbeConfig().model_dump(mode="json"))
    section = markdown.split("## Object and probe")[1].split("##")[0]
    assert f"| why this probe | {DEFAULT_PROBE_NOTE} |" in section


def test_a_figures_folder_linked_out_of_the_output_is_refused(tmp_path):
    """Issue 27, item 2: the comparison never writes through a link out of its folder."""
    from ptypinn.io.artifacts import OutputError
    from ptypinn.study.compare import run_comparison
    from ptypinn.study.design import preset

    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "figures").symlink_to(outside)
    with pytest.raises(OutputError, match="a symbolic link leads it out of the output folder"):
        run_comparison(
            preset("smoke"), tmp_path, tmp_path, tmp_path, tmp_path, tmp_path, tmp_path / "g"
        )
    assert list(outside.iterdir()) == []


def test_the_overlap_table_shows_each_views_geometry_once():
    """Issue 27, item 16: rows that differ only in their dose are one row (dose: all)."""
    from ptypinn.study.compare import overlap_once

    def row(dose, view, split, overlap):
        return {"dose": dose, "view": view, "split": split, "nearest_overlap": overlap}

    rows = [
        row(d, v, s, 0.7 if v == "dense" else 0.2)
        for d in (1e3, 1e4)
        for v in ("dense", "sparse")
        for s in ("train", "test")
    ]
    once = overlap_once(rows)
    assert [(r["dose"], r["view"], r["split"]) for r in once] == [
        ("all", "dense", "train"),
        ("all", "dense", "test"),
        ("all", "sparse", "train"),
        ("all", "sparse", "test"),
    ]
    rows[0]["nearest_overlap"] = 0.69  # a dose whose measurement differs keeps its own row
    labels = [(r["dose"], r["view"], r["split"]) for r in overlap_once(rows)]
    assert ("1000", "dense", "train") in labels and ("10000", "dense", "train") in labels
