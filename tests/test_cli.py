import json

import numpy as np
import pytest
from typer.testing import CliRunner

from ptypinn.cli import app, main
from ptypinn.io.dataset import load_dataset
from ptypinn.study.design import preset

runner = CliRunner()


def test_simulate_writes_a_valid_dataset_in_the_default_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, ["simulate", "--preset", "smoke", "--dose", "1000"]
    )  # full: 11k patterns of 128²
    assert result.exit_code == 0, result.output
    design = preset("smoke")
    for dose in (1000,):
        dataset = load_dataset(tmp_path / "ptypinn-sim" / f"dose_{int(dose)}" / "test.npz")
        assert dataset.patch_size == design.patch_size
        assert dataset.metadata["nphotons"] == dose
    assert (tmp_path / "ptypinn-sim" / "simulation_manifest.json").is_file()


def test_simulate_from_an_object_file(tmp_path):
    obj = (np.ones((160, 160)) * np.exp(0.5j)).astype(np.complex64)
    np.savez(tmp_path / "obj.npz", objectGuess=obj)
    result = runner.invoke(
        app,
        [
            "simulate",
            "--preset",
            "smoke",
            "--dose",
            "2000",
            "--object",
            str(tmp_path / "obj.npz"),
            "--output-root",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    dataset = load_dataset(tmp_path / "out/dose_2000/train.npz")
    np.testing.assert_array_equal(dataset.obj, obj)
    assert dataset.metadata["source"]["object"].endswith("obj.npz")


def run_main(monkeypatch, capsys, *args):
    monkeypatch.setattr("sys.argv", ["ptypinn", *args])
    try:
        main()
    except SystemExit as exit_:
        code = exit_.code
    else:
        code = 0
    return code, capsys.readouterr()


def test_user_errors_are_one_message_without_traceback(tmp_path, monkeypatch, capsys):
    config = tmp_path / "design.yaml"
    config.write_text("patch_size: 100\n")
    code, out = run_main(
        monkeypatch,
        capsys,
        "simulate",
        "--config",
        str(config),
        "--output-root",
        str(tmp_path / "o"),
    )
    assert code == 2
    assert "patch_size: N must be one of (64, 128, 256)" in out.err
    assert "Traceback" not in out.err + out.out
    assert not (tmp_path / "o").exists()

    code, out = run_main(
        monkeypatch, capsys, "simulate", "--preset", "smoke", "--object", str(tmp_path / "nope.npz")
    )
    assert code == 2 and "no such file" in out.err

    code, out = run_main(
        monkeypatch,
        capsys,
        "simulate",
        "--preset",
        "smoke",
        "--dose",
        "-5",
        "--output-root",
        str(tmp_path / "o"),
    )
    assert code == 2 and "--dose must be positive" in out.err


def test_version(monkeypatch, capsys):
    code, out = run_main(monkeypatch, capsys, "--version")
    assert code == 0 and out.out.startswith("ptypinn ")


@pytest.mark.slow
def test_train_then_reconstruct_with_test_time_refinement(tmp_path):
    sim = runner.invoke(
        app,
        ["simulate", "--preset", "smoke", "--dose", "10000", "--output-root", str(tmp_path / "c")],
    )
    assert sim.exit_code == 0, sim.output
    train = runner.invoke(
        app,
        [
            "train",
            "--preset",
            "smoke",
            "--train",
            str(tmp_path / "c/dose_10000/train.npz"),
            "--output",
            str(tmp_path / "e"),
            "--max-epochs",
            "1",
            "--logger",
            "none",
        ],
    )
    assert train.exit_code == 0, train.output
    rec = runner.invoke(
        app,
        [
            "reconstruct",
            "--bundle",
            str(tmp_path / "e/model.pt"),
            "--data",
            str(tmp_path / "c/dose_10000/test.npz"),
            "--output",
            str(tmp_path / "r"),
            "--refine",
            "2",
        ],
    )
    assert rec.exit_code == 0, rec.output
    assert "including 2 refinement steps" in rec.output
    arrays = np.load(tmp_path / "r/reconstruction.npz", allow_pickle=False)
    assert np.isfinite(arrays["objectGuess"]).all()


def test_score_prints_scores_alignment_and_region_and_refuses_bad_files(
    small_dataset, tmp_path, monkeypatch, capsys
):
    from ptypinn.io.artifacts import write_npz
    from ptypinn.io.dataset import metadata_entry, save_dataset

    truth = save_dataset(tmp_path / "truth.npz", small_dataset)
    recon = write_npz(
        tmp_path / "recon.npz",
        {
            "objectGuess": (small_dataset.obj * np.exp(-0.4j)).astype(np.complex64),
            "probeGuess": small_dataset.probe,
            "xcoords": small_dataset.xcoords,
            "ycoords": small_dataset.ycoords,
            "metadata": metadata_entry({}),
        },
    )
    arguments = ("score", str(recon), "--truth", str(truth), "--max-shift", "2")
    code, out = run_main(monkeypatch, capsys, *arguments)
    assert code == 0, out.err
    result = json.loads(out.out)
    assert result["scores"]["phase"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert result["scores"]["phase"]["psnr"] is None or result["scores"]["phase"]["psnr"] > 100
    assert result["alignment"]["gain_phase_rad"] == pytest.approx(0.4, abs=1e-4)
    assert result["alignment"]["max_shift_px"] == 2.0
    assert result["region"]["illuminated_px"] > 0 and "largest square" in result["region_rule"]
    assert set(result["undefined"]["phase"]) <= {"psnr", "frc50", "frc_half_bit"}

    (tmp_path / "bad.npz").write_bytes(b"not a zip archive")
    for args, message in (
        (["score", str(tmp_path / "bad.npz"), "--truth", str(truth)], "not a readable NPZ file"),
        (["score", str(truth), "--truth", str(truth)], "holds a dataset"),
        (["score", str(recon), "--truth", str(recon)], "holds a reconstruction"),
        (["score", str(tmp_path / "missing.h5"), "--truth", str(truth)], "missing.h5"),
    ):
        code, out = run_main(monkeypatch, capsys, *args)
        assert code == 2 and message in out.err, out.err
        assert "Traceback" not in out.err + out.out


@pytest.mark.parametrize(
    ("name", "arrays", "message"),
    [
        (
            "--probe",
            {"probeGuess": np.ones((80, 80), np.complex64)},
            "probeGuess must be a finite, non-zero, complex 64x64 array",
        ),
        (
            "--probe",
            {"probeGuess": np.ones((64, 64), np.float64)},
            "probeGuess is real (float64)",
        ),
        (
            "--object",
            {"objectGuess": np.ones((100, 400), np.complex64)},
            "objectGuess is 100x400 px, smaller than the scan needs at N=64",
        ),
    ],
)
def test_study_run_refuses_a_broken_object_or_probe_file(
    tmp_path, monkeypatch, capsys, name, arrays, message
):
    np.savez(tmp_path / "input.npz", **arrays)
    output = tmp_path / "study"
    code, out = run_main(
        monkeypatch,
        capsys,
        "study",
        "run",
        name,
        str(tmp_path / "input.npz"),
        "--output",
        str(output),
    )
    assert code == 2
    assert message in out.err and len(out.err.strip().splitlines()) == 1  # one message
    assert "Traceback" not in out.err + out.out
    assert not output.exists()


def test_third_party_deprecations_are_quiet_and_ours_are_not():
    """Issue 27, item 15: Lightning's and CDTools' deprecation notices are filtered in the CLI;
    warnings from ptypinn (and other libraries' real warnings) still show."""
    import warnings

    from ptypinn.cli import quiet_third_party_warnings

    def emitted(category, module):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_third_party_warnings()
            warnings.warn_explicit("notice", category, "x.py", 1, module=module)
        return len(caught)

    assert emitted(FutureWarning, "lightning.pytorch.utilities._pytree") == 0
    assert emitted(DeprecationWarning, "cdtools.tools.plotting.plotting") == 0
    assert emitted(DeprecationWarning, "ptypinn.study.compare") == 1
    assert emitted(UserWarning, "lightning.pytorch.trainer") == 1
    assert emitted(DeprecationWarning, "lightningfast") == 1
