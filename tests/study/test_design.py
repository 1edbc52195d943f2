import pytest

from ptypinn.study.design import DesignError, StudyDesign, load_design, make_design, preset


def test_full_preset_is_the_stated_design():
    design = preset("full")
    assert design == StudyDesign()
    assert design.doses == (1e3, 1e4, 1e5)
    assert design.gridsizes == (1, 2)
    assert design.neighbor_count == 7
    assert design.patch_size == 128
    assert design.spacing("dense") == pytest.approx(38.4)
    assert design.spacing("sparse") == pytest.approx(102.4)
    assert (design.seeds.simulation, design.seeds.grouping, design.seeds.subsampling) == (42, 123, 456)
    assert design.metrics.ms_ssim_sigma == 1.0


def test_smoke_preset_is_small():
    design = preset("smoke")
    assert design.patch_size == 64
    assert design.simulation.object_size <= 256
    assert design.spacing("dense") == pytest.approx(0.3 * 64)


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
        ({"simulation": {"object_size": 100, "scan": {"step_px": 5}}}, "simulation.object_size", "at least 2N=256"),
    ],
)
def test_invalid_designs_name_the_field(values, field, phrase):
    with pytest.raises(DesignError) as caught:
        make_design(values)
    message = str(caught.value)
    assert f"{field}:" in message or f"{field} " in message
    assert phrase in message


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
    path.write_text("simulation: {scan: {step_px: 10}}\n")
    full = load_design(path)
    assert (
        full.simulation.scan.step_px == 10
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
