from typing import get_args

import numpy as np
import pytest

from ptypinn.engines.api import ENGINES, CDToolsOptions, EngineName, PtychiOptions
from ptypinn.io.dataset import DatasetError
from ptypinn.physics.probes import diffuser_probe
from ptypinn.study.design import (
    DesignError,
    ProbeConfig,
    StudyDesign,
    load_design,
    make_design,
    merged,
    preset,
    with_inputs,
    with_iterative,
)


def test_full_preset_is_the_stated_design():
    design = preset("full")
    assert design == StudyDesign()
    assert design.doses == (1e3, 1e4, 1e5)
    assert design.gridsizes == (1, 2)
    assert design.neighbor_count == 7
    assert design.patch_size == 128
    # Default rule disc_overlap: the probe footprints (a disk N/2 across: D ~ 65.8 px) overlap by
    # the target at d ~ 0.238 D (dense, f = 0.7) and d ~ 0.687 D (sparse, f = 0.2).
    assert [view.rule for view in design.views] == ["disc_overlap", "disc_overlap"]
    disk = design.model_copy(
        update={
            "simulation": design.simulation.model_copy(update={"probe": ProbeConfig(kind="disk")})
        }
    )
    diameter = disk.probe_diameter()
    assert diameter == pytest.approx(65.8, abs=0.1)
    assert disk.spacing("dense") == pytest.approx(0.2379 * diameter, rel=1e-3)
    assert disk.spacing("sparse") == pytest.approx(0.6870 * diameter, rel=1e-3)
    # and with the design's own probe, whatever its footprint
    own = design.probe_diameter()
    assert design.spacing("dense") == pytest.approx(0.2379 * own, rel=1e-3)
    # The original study's rule, S = (1 - f) N, stays available.
    assert design.view("dense").model_copy(update={"rule": "patch_linear"}).spacing(
        128, diameter
    ) == pytest.approx(38.4)
    assert design.view("sparse").model_copy(update={"rule": "patch_linear"}).spacing(
        128, diameter
    ) == pytest.approx(102.4)
    assert (design.seeds.simulation, design.seeds.grouping, design.seeds.subsampling) == (
        42,
        123,
        456,
    )
    assert design.metrics.ms_ssim_sigma == 1.0


def test_smoke_preset_is_small():
    design = preset("smoke")
    assert design.patch_size == 64
    assert design.simulation.object_size <= 384
    assert design.spacing("dense") == pytest.approx(0.2379 * design.probe_diameter(), rel=1e-3)
    assert design.spacing("dense") >= design.simulation.scan.step_px


def test_yaml_round_trip(tmp_path):
    design = make_design({"doses": [500, 5000], "views": [{"name": "dense", "fraction": 0.6}]})
    path = design.save(tmp_path / "design.yaml")
    assert load_design(path) == design


def test_partial_yaml_takes_defaults(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("doses: [2000]\n")
    design = load_design(path)
    assert design.doses == (2000.0,) and design.patch_size == 128


@pytest.mark.parametrize(
    ("values", "field", "phrase"),
    [
        ({"neighbor_count": 3}, "neighbor_count", "K=3 is smaller than C=gridsize^2=4"),
        ({"views": [{"name": "dense", "fraction": 1.0}]}, "views.0.fraction", "[0, 1)"),
        ({"views": [{"name": "dense", "fraction": -0.1}]}, "views.0.fraction", "[0, 1)"),
        ({"doses": []}, "doses", "at least one dose"),
        ({"doses": [1000, -5]}, "doses", "positive"),
        ({"doses": [1000, 1000]}, "doses", "distinct"),
        ({"doses": [float("inf")]}, "doses", "finite"),
        ({"doses": [float("nan")]}, "doses", "[nan]"),
        ({"seeds": {"simulation": -1}}, "seeds.simulation", "greater than or equal to 0"),
        ({"training": {"seed": -3}}, "training.seed", "greater than or equal to 0"),
        ({"patch_size": 100}, "patch_size", "N must be one of (64, 128, 256)"),
        ({"gridsizes": [0]}, "gridsizes", ">= 1"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
        (
            {"simulation": {"object_size": 100, "scan": {"step_px": 5}}},
            "simulation.object_size",
            "at least 2N=256",
        ),
        ({"iterative": {"engines": ["ptychi"] * 2}}, "iterative.engines", "each engine once"),
        ({"iterative": {"engines": ["epie"]}}, "iterative.engines.0", "'cdtools' or 'ptychi'"),
        (
            {"iterative": {"ptychi": {"noise_model": "laplace"}}},
            "iterative.ptychi.noise_model",
            "'gaussian' or 'poisson'",
        ),
        (
            {"iterative": {"cdtools": {"learning_rate": 0}}},
            "iterative.cdtools.learning_rate",
            "greater than 0",
        ),
        # Designs that validated but could not run (issue 27, items 5, 8, 11)
        ({"doses": [1e300]}, "doses", "at most 1e+12 photons per pattern"),
        ({"seeds": {"grouping": 10**23}}, "seeds.grouping", "less than or equal to 4294967295"),
        ({"training": {"seed": 10**23}}, "training.seed", "less than or equal to 4294967295"),
        ({"training": {"learning_rate": float("inf")}}, "training.learning_rate", "finite"),
        ({"training": {"nll_weight": float("inf")}}, "training.nll_weight", "finite number"),
        (
            {"simulation": {"object_size": 10**7, "scan": {"step_px": 5}}},
            "simulation.object_size",
            "less than or equal to 8192",
        ),
        (
            {"simulation": {"object_size": 8192, "scan": {"step_px": 1, "jitter_px": 0}}},
            "simulation.scan.step_px",
            "more than the 1,000,000 a study can run",
        ),
        (
            {"simulation": {"object_size": 384, "scan": {"step_px": 1e-9}}},
            "simulation.scan.step_px",
            "greater than or equal to 0.25",
        ),
        (
            {"simulation": {"object_size": 384, "scan": {"step_px": 5, "jitter_px": 1e6}}},
            "jitter_px",
            "more than the step (5 px)",
        ),
        ({"metrics": {"max_shift_px": 100}}, "metrics.max_shift_px", "less than or equal to 16"),
    ],
)
def test_invalid_designs_name_the_field(values, field, phrase):
    with pytest.raises(DesignError) as caught:
        make_design(values)
    message = str(caught.value)
    assert f"{field}:" in message or f"{field} " in message
    assert phrase in message


@pytest.mark.parametrize(
    ("views", "step", "refused"),
    [
        ([{"name": "dense", "fraction": 0.7}], 8.0, "dense"),  # needs 7.84 px at N = 64
        ([{"name": "wide", "fraction": 0.2}, {"name": "close", "fraction": 0.9}], 5.0, "close"),
        ([{"name": "dense", "fraction": 0.7, "rule": "patch_linear"}], 20.0, "dense"),  # 19.2 px
    ],
)
def test_a_view_whose_spacing_is_below_the_base_step_is_refused(views, step, refused):
    values = {
        "patch_size": 64,
        "views": views,
        "simulation": {"object_size": 256, "scan": {"step_px": step}},
    }
    with pytest.raises(DesignError) as caught:
        make_design(values)
    message = str(caught.value)
    assert f"view {refused!r}" in message and "below the base scan step" in message
    assert message.count("view '") == 1  # only the unreachable view is named
    # A step at or below the spacing is accepted.
    spacing = make_design(
        {**values, "simulation": {"object_size": 256, "scan": {"step_px": 1.0}}}
    ).spacing(refused)
    assert (
        make_design(
            {**values, "simulation": {"object_size": 256, "scan": {"step_px": spacing}}}
        ).spacing(refused)
        == spacing
    )


def test_an_unreachable_design_file_exits_2_with_one_message(tmp_path, monkeypatch, capsys):
    from ptypinn.cli import main

    path = tmp_path / "design.yaml"
    path.write_text("patch_size: 64\nsimulation: {object_size: 256, scan: {step_px: 10}}\n")
    monkeypatch.setattr(
        "sys.argv",
        ["ptypinn", "simulate", "--config", str(path), "--output-root", str(tmp_path / "c")],
    )
    with pytest.raises(SystemExit) as caught:
        main()
    out = capsys.readouterr()
    assert caught.value.code == 2
    assert "view 'dense'" in out.err and "below the base scan step 10 px" in out.err
    assert "Traceback" not in out.err + out.out
    assert not (tmp_path / "c").exists()


def test_bad_design_files_are_reported(tmp_path):
    with pytest.raises(DesignError, match="cannot read"):
        load_design(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("doses: [1, 2\n")
    with pytest.raises(DesignError, match="not valid YAML"):
        load_design(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(DesignError, match="mapping"):
        load_design(listing)


def test_a_design_file_lists_only_what_it_changes(tmp_path):
    """Fields left out, nested ones too, keep the base preset's values."""
    path = tmp_path / "d.yaml"
    path.write_text("simulation: {scan: {step_px: 7}}\n")
    full = load_design(path)
    assert (
        full.simulation.scan.step_px == 7
        and full.simulation.object_size == preset("full").simulation.object_size
    )
    smoke = load_design(path, base="smoke")
    assert (
        smoke.patch_size == 64
        and smoke.simulation.object_size == preset("smoke").simulation.object_size
    )
    assert smoke.simulation.scan.jitter_px == preset("smoke").simulation.scan.jitter_px
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_design(empty, base="smoke") == preset("smoke")


@pytest.mark.parametrize("text", ["doses: [1e400]\n", "doses: [.inf]\n"])
def test_infinite_doses_in_a_file_are_refused(tmp_path, text):
    path = tmp_path / "d.yaml"
    path.write_text(text)
    with pytest.raises(DesignError, match="doses: .*finite"):
        load_design(path)


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(DesignError, match="not UTF-8 text"):
        load_design(path)


def test_unknown_preset():
    with pytest.raises(DesignError, match="unknown preset 'huge'"):
        preset("huge")


def test_iterative_engines_take_their_options_from_the_engines():
    design = preset("full")
    assert design.iterative.engines == ("cdtools", "ptychi")
    # each engine's own defaults, keeping its object at the design's checkpoints and its last
    kept = (0, 1, 2, 5, 10, 20, 100)
    assert design.iterative.options("cdtools") == CDToolsOptions(checkpoints=kept)
    assert design.iterative.options("ptychi") == PtychiOptions(checkpoints=kept)
    smoke = preset("smoke").iterative
    assert smoke.options("cdtools").iterations == smoke.options("ptychi").iterations == 30
    assert smoke.options("cdtools").checkpoints == (0, 1, 2, 5, 10, 20, 30)
    narrowed = with_iterative(design, ["ptychi"], 7).iterative
    assert narrowed.engines == ("ptychi",)
    assert narrowed.options("ptychi") == PtychiOptions(iterations=7, checkpoints=(0, 1, 2, 5, 7))
    assert narrowed.options("cdtools").iterations == 7
    assert with_iterative(design) == design
    with pytest.raises(DesignError, match="checkpoints are iterations"):
        make_design({"iterative": {"checkpoints": [-1, 5]}})


def test_the_engine_name_type_spells_every_engine():
    assert get_args(EngineName) == ENGINES


def test_scoring_defaults_bound_the_alignment_and_guard_the_split():
    from ptypinn.analysis.metrics import MAX_SHIFT_PX

    design = preset("full")
    assert design.metrics.max_shift_px == MAX_SHIFT_PX  # the design and align() agree
    assert design.simulation.guard_band is True
    with pytest.raises(DesignError, match="metrics.max_shift_px"):
        make_design({"metrics": {"max_shift_px": -1}})


@pytest.mark.parametrize("kind", ["disk", "gaussian", "airy", "zone_plate", "diffuser"])
def test_every_probe_model_builds_from_the_design(kind):
    values = merged(preset("smoke").to_dict(), {"simulation": {"probe": {"kind": kind}}})
    design = make_design(values)
    probe = design.simulation.probe.build(64)
    assert probe.shape == (64, 64) and probe.dtype == np.complex64
    assert np.abs(probe).max() == pytest.approx(1.0)
    # a footprint well inside N, about N/2 across
    assert 0.3 * 64 < design.probe_diameter() < 0.65 * 64
    parameters = design.simulation.probe.parameters()
    assert parameters["kind"] == kind and ("diffuser" in parameters) == (kind == "diffuser")


def test_the_default_probe_is_a_defocused_zone_plate():
    """A 50 nm outermost zone at 25 nm pixels (pupil 0.5 of Nyquist), a 30% central stop, the
    beam N/2 across at the sample: at N = 64 and 0.1 nm, 400 um past the focus."""
    assert preset("full").simulation.probe.parameters() == {
        "kind": "zone_plate",
        "diameter_fraction": 0.5,
        "pupil_fraction": 0.5,
        "central_stop": 0.3,
    }
    assert preset("smoke").simulation.probe == ProbeConfig()


def test_a_diffuser_multiplies_its_base_by_the_seeded_screen():
    values = {"kind": "diffuser", "diffuser": {"base": "zone_plate", "rms_phase": 0.5, "seed": 3}}
    probe = ProbeConfig.model_validate(values)
    base = ProbeConfig(kind="zone_plate")
    expected = diffuser_probe(base.build(128), 4.0, 0.5, seed=3)
    np.testing.assert_array_equal(probe.build(128), expected)


def test_a_file_probe_needs_its_file_and_reads_it(tmp_path):
    with pytest.raises(DesignError, match="needs simulation.probe.file"):
        make_design(merged(preset("smoke").to_dict(), {"simulation": {"probe": {"kind": "file"}}}))
    probe = (0.5 * np.exp(1j * np.arange(64 * 64) / 500)).reshape(64, 64).astype(np.complex64)
    np.savez(tmp_path / "probe.npz", probeGuess=probe)
    design = with_inputs(preset("smoke"), probe_file=tmp_path / "probe.npz")
    assert design.simulation.probe.kind == "file" and design.simulation.probe.file.is_absolute()
    np.testing.assert_array_equal(design.simulation.probe.build(64), probe)
    assert design.simulation.input_files() == {"probe": tmp_path / "probe.npz"}


def test_input_files_in_a_design_file_are_relative_to_it(tmp_path):
    (tmp_path / "sub").mkdir()
    np.savez(tmp_path / "sub" / "p.npz", probeGuess=np.ones((64, 64), np.complex64))
    config = tmp_path / "sub" / "design.yaml"
    config.write_text("simulation:\n  object_file: obj.npz\n  probe: {kind: file, file: p.npz}\n")
    design = load_design(config, base="smoke")
    assert design.simulation.input_files() == {
        "object": tmp_path / "sub" / "obj.npz",
        "probe": tmp_path / "sub" / "p.npz",
    }
    # saved with absolute paths: the study folder's design.yaml reads back the same
    assert load_design(design.save(tmp_path / "copy.yaml"), base="smoke") == design


def test_a_user_object_smaller_than_the_scan_is_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", objectGuess=np.ones((200, 100), np.complex64))
    with pytest.raises(DatasetError, match=r"200x100 px, smaller than the scan needs at N=64"):
        with_inputs(preset("smoke"), object_file=tmp_path / "obj.npz")


# --------------------------------------------------------------------------------------------
# Design files (issue 27, items 5 and 11)


def test_a_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("doses: [1000]\ntraining:\n  epochs: 2\n  epochs: 3\n")
    with pytest.raises(DesignError, match="the key 'epochs' is given twice"):
        load_design(path)


def test_a_deeply_nested_file_is_refused(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(DesignError, match="nested more than 64 levels"):
        load_design(path)
    path.write_text("a:\n" + "".join("  " * i + "- \n" for i in range(1, 3000)))
    with pytest.raises(DesignError, match="not valid YAML|nested"):
        load_design(path)


def test_the_scan_is_sized_before_phase_c_starts(tiny_design, tmp_path, monkeypatch):
    from ptypinn.io import limits
    from ptypinn.study.simulate import run_simulation

    monkeypatch.setattr(limits, "memory_limit_bytes", lambda: 10**6)  # a 1 MB machine
    with pytest.raises(DesignError, match=r"the scan \(about 41 patterns of 64x64 px"):
        run_simulation(tiny_design, tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_every_engine_the_design_accepts_is_registered_with_its_options():
    from typing import get_args

    from ptypinn.engines.api import ENGINE_OPTIONS, ENGINES, EngineName
    from ptypinn.study.design import IterativeConfig

    assert set(get_args(EngineName)) == set(ENGINES)
    fields = IterativeConfig.model_fields
    for name, options in ENGINE_OPTIONS.items():
        assert fields[name].annotation is options
        defaults = options()
        assert IterativeConfig().options(name).model_copy(update={"checkpoints": ()}) == defaults
