"""The Python API: the README's notebook example, on a tiny design."""

import math

import ptypinn


def test_the_readme_example_simulates_trains_reconstructs_and_scores(tiny_design, tmp_path):
    design = tiny_design.model_copy(update={"doses": (1e4,)})
    manifest = ptypinn.simulate(design, tmp_path / "sim")
    assert [entry["dose"] for entry in manifest["doses"]] == [1e4]
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
