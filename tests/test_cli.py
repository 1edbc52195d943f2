import numpy as np
import pytest
from typer.testing import CliRunner

from ptypinn.cli import app, main
from ptypinn.io.dataset import load_dataset
from ptypinn.study.design import preset

runner = CliRunner()


def test_simulate_writes_a_valid_dataset_in_the_default_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["simulate", "--preset", "smoke", "--dose", "1000"])  # full: 11k patterns of 128²
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
    result = runner.invoke(app, ["simulate", "--preset", "smoke", "--dose", "2000", "--object", str(tmp_path / "obj.npz"), "--output-root", str(tmp_path / "out")])
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
    code, out = run_main(monkeypatch, capsys, "simulate", "--config", str(config), "--output-root", str(tmp_path / "o"))
    assert code == 2
    assert "patch_size: N must be one of (64, 128, 256)" in out.err
    assert "Traceback" not in out.err + out.out
    assert not (tmp_path / "o").exists()

    code, out = run_main(monkeypatch, capsys, "simulate", "--preset", "smoke", "--object", str(tmp_path / "nope.npz"))
    assert code == 2 and "no such file" in out.err

    code, out = run_main(monkeypatch, capsys, "simulate", "--preset", "smoke", "--dose", "-5", "--output-root", str(tmp_path / "o"))
    assert code == 2 and "--dose must be positive" in out.err


def test_version(monkeypatch, capsys):
    code, out = run_main(monkeypatch, capsys, "--version")
    assert code == 0 and out.out.startswith("ptypinn ")


@pytest.mark.slow
def test_train_then_reconstruct_with_test_time_refinement(tmp_path):
    sim = runner.invoke(app, ["simulate", "--preset", "smoke", "--dose", "10000", "--output-root", str(tmp_path / "c")])
    assert sim.exit_code == 0, sim.output
    train = runner.invoke(app, ["train", "--preset", "smoke", "--train", str(tmp_path / "c/dose_10000/train.npz"),
                                "--output", str(tmp_path / "e"), "--max-epochs", "1", "--logger", "none"])
    assert train.exit_code == 0, train.output
    rec = runner.invoke(app, ["reconstruct", "--bundle", str(tmp_path / "e/model.pt"), "--data",
                              str(tmp_path / "c/dose_10000/test.npz"), "--output", str(tmp_path / "r"), "--refine", "2"])
    assert rec.exit_code == 0, rec.output
    assert "refined for 2 steps" in rec.output
    arrays = np.load(tmp_path / "r/reconstruction.npz", allow_pickle=False)
    assert np.isfinite(arrays["objectGuess"]).all()
