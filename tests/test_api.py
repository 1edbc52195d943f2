"""The Python API: the README's notebook example, on a tiny design."""

import math

import ptypinn


def test_the_readme_example_simulates_trains_reconstructs_and_scores(tiny_design, tmp_path):
    design = tiny_design.model_copy(update={"doses": (1e4,)})
    manifest = ptypinn.simulate(design, tmp_path / "sim")
    assert [entry.dose for entry in manifest.doses] == [1e4]
    result = ptypinn.train(
        tmp_path / "sim/dose_10000/train.npz",
        tmp_path / "model",
        design=design,
        samples=64,
        batch_size=8,
    )
    assert result.steps == 8 and result.samples_seen == 64 and result.bundle.is_file()
    test = ptypinn.load_dataset(tmp_path / "sim/dose_10000/test.npz")
    rec = ptypinn.reconstruct(result.bundle, test, refine_steps=2)
    assert rec.obj.shape == test.obj.shape and rec.iterations == 2
    scores = ptypinn.score(rec, test)
    assert -1 <= scores["scores"]["phase"]["ssim"] <= 1 and math.isfinite(
        scores["alignment"]["residual"]
    )
    assert abs(scores["alignment"]["shift_x_px"]) <= 3  # the default bound


def test_the_package_exports_its_api_without_importing_torch():
    import subprocess
    import sys

    code = "import sys, ptypinn; ptypinn.StudyDesign; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert {"simulate", "train", "reconstruct", "score", "run_study", "StudyDesign"} <= set(
        dir(ptypinn)
    )


def test_designs_and_data_are_accepted_in_their_obvious_forms(tmp_path, small_dataset):
    """A dict of fields, a YAML path and a file path for a reconstruction work; anything else
    says what is expected (issue 27, item 14)."""
    import pytest

    from ptypinn.io.dataset import DatasetError
    from ptypinn.io.reconstruction import Reconstruction, write_reconstruction
    from ptypinn.study.design import DesignError

    tiny = {
        "doses": [1e4],
        "simulation": {"object_size": 128, "scan": {"step_px": 12.0}, "guard_band": False},
        "views": [{"name": "dense", "fraction": 0.7, "rule": "patch_linear"}],
    }
    manifest = ptypinn.simulate(tiny, tmp_path / "sim")
    assert [entry.dose for entry in manifest.doses] == [1e4]
    (tmp_path / "d.yaml").write_text("doses: [2000]\n")
    assert ptypinn.api._design(tmp_path / "d.yaml").doses == (2000.0,)
    with pytest.raises(DesignError, match="doses must be a list of numbers, got '1e4'"):
        ptypinn.simulate(tiny, tmp_path / "sim2", doses="1e4")
    with pytest.raises(DesignError, match="design must be a StudyDesign, a preset name"):
        ptypinn.run_study(42, tmp_path / "study")
    with pytest.raises(DesignError, match="design must be"):
        ptypinn.run_study("no-such-preset", tmp_path / "study")
    assert not (tmp_path / "study").exists() and not (tmp_path / "sim2").exists()

    data = small_dataset
    perfect = Reconstruction("truth", data.obj, data.probe, data.positions, data.geometry)
    write_reconstruction(tmp_path / "rec.npz", perfect)
    scores = ptypinn.score(tmp_path / "rec.npz", data)
    assert scores["scores"]["phase"]["ssim"] > 0.99
    with pytest.raises(DatasetError, match="reconstruction must be a Reconstruction"):
        ptypinn.score(data.obj, data)
    with pytest.raises(DesignError, match="less than or equal to 16"):
        ptypinn.score(perfect, data, max_shift_px=100)
