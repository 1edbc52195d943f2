"""The bad-input catalogue, through the command line: every user mistake is one message and exit
status 2 (no traceback), a numerical failure is one message and status 1, and user text (paths,
values) is printed as it is, never read as Rich markup."""

import dataclasses
import json
import os
import zipfile

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ptypinn.cli import app
from ptypinn.io.artifacts import sha256_file, write_npz
from ptypinn.io.cxi import write_cxi
from ptypinn.io.dataset import PtychoDataset, load_dataset, save_dataset
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.pinn.train import JobSpec, content_sha256, train_model
from ptypinn.study.design import make_design, preset
from ptypinn.study.layout import TRAINING_MANIFEST, split_path
from ptypinn.study.simulate import run_simulation
from ptypinn.study.training import TRAINING_PREVIEW

TINY = {
    "name": "tiny",
    "patch_size": 64,
    "doses": [1e4],
    # the disk N/2 across: its patterns are peaked enough that squaring them (intensities given
    # as amplitudes) doubles their energy, which the dataset check refuses
    "simulation": {
        "object_size": 128,
        "scan": {"step_px": 8.0, "jitter_px": 1.0},
        "probe": {"kind": "disk"},
    },
    "training": {"width": 1, "epochs": 1, "batch_size": 8},
    "iterative": {"cdtools": {"iterations": 1}, "ptychi": {"iterations": 1}},
    "views": [
        {"name": "dense", "fraction": 0.7, "rule": "patch_linear"},
        {"name": "sparse", "fraction": 0.2, "rule": "patch_linear"},
    ],
}
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def refused(*args, phrase: str, code: int = 2):
    """Run a command that must fail with exactly one message containing ``phrase``."""
    result = invoke(*args)
    assert result.exit_code == code, result.output
    uncaught = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not uncaught, repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stderr.count("error:") == 1 and phrase in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A design file, its phase C data and a one-epoch gridsize-1 bundle."""
    root = tmp_path_factory.mktemp("faults")
    design = make_design(TINY)
    config = design.save(root / "design.yaml")
    run_simulation(design, root / "c")
    train = split_path(root / "c", 1e4, "train")
    bundle = train_model(
        JobSpec(train, 1, design.neighbor_count, design.seeds.grouping, design.training),
        load_dataset(train),
        root / "e",
        TrainerOptions(logger="none", checkpoints=False, progress=False),
    ).bundle
    return {
        "root": root,
        "config": config,
        "train": train,
        "test": split_path(root / "c", 1e4, "test"),
        "bundle": bundle,
    }


def edited(study, tmp_path, name="data.npz", **changes):
    """The test split with some arrays replaced, saved without validation (as users' files are)."""

    arrays = load_dataset(study["test"]).to_arrays()
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    return write_npz(tmp_path / name, arrays)


# --------------------------------------------------------------------------------------------
# Text from users is printed as it is


def test_paths_with_markup_brackets_are_printed_verbatim(study, tmp_path):
    out = tmp_path / "out" / "[/x]"
    result = invoke(
        "train",
        "--train",
        study["train"],
        "--output",
        out,
        "--config",
        study["config"],
        "--logger",
        "none",
    )
    assert result.exit_code == 0, result.output
    assert f"bundle: {out / 'model.pt'}" in result.stdout and (out / "model.pt").is_file()
    out = tmp_path / "out" / "[/b]"
    result = invoke(
        "reconstruct", "--bundle", study["bundle"], "--data", study["test"], "--output", out
    )
    assert result.exit_code == 0, result.output
    assert f"reconstruction: {out / 'reconstruction.npz'}" in result.stdout
    refused(
        "reconstruct",
        "--bundle",
        study["bundle"],
        "--data",
        tmp_path / "[red]x.npz",
        "--output",
        tmp_path,
        phrase=f"no such file: {tmp_path / '[red]x.npz'}",
    )


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("doses: [.nan]\n", "doses must be positive photon counts per pattern, got [nan]"),
        (
            "views: [{name: Dense, fraction: 0.5}]\n",
            "String should match pattern '^[a-z][a-z0-9_]*$'",
        ),
        ("doses: [1e400]\n", "doses must be finite photon counts per pattern, got [inf]"),
        ("doses: [.inf]\n", "doses must be finite"),
        (
            "seeds: {simulation: -1}\n",
            "seeds.simulation: Input should be greater than or equal to 0",
        ),
    ],
)
def test_bad_design_files_are_one_message(tmp_path, text, phrase):
    config = tmp_path / "d.yaml"
    config.write_text(text)
    refused("study", "run", "--config", config, "--output", tmp_path / "s", phrase=phrase)
    assert not (tmp_path / "s").exists()


def test_a_design_file_that_is_not_utf8(tmp_path):
    config = tmp_path / "d.yaml"
    config.write_bytes(b"name: caf\xe9\n")
    refused(
        "study",
        "run",
        "--config",
        config,
        "--output",
        tmp_path / "s",
        phrase=f"design file {config} is not UTF-8 text",
    )


def test_an_empty_design_file_is_the_preset(tmp_path):
    """A design file lists only what it changes: an empty one is --preset itself."""
    config = tmp_path / "empty.yaml"
    config.write_text("")
    result = invoke(
        "simulate",
        "--preset",
        "smoke",
        "--config",
        config,
        "--dose",
        "1000",
        "--output-root",
        tmp_path / "c",
    )
    assert result.exit_code == 0, result.output
    assert (
        load_dataset(tmp_path / "c" / "dose_1000" / "test.npz").patch_size
        == preset("smoke").patch_size
    )


# --------------------------------------------------------------------------------------------
# Bad data


def test_training_on_bad_data_is_refused(study, tmp_path):
    zeros = edited(
        study,
        tmp_path,
        diffraction=np.zeros((30, 64, 64), np.float32),
        xcoords=np.full(30, 64.0),
        ycoords=np.full(30, 64.0),
        scan_index=None,
    )
    refused(
        "train",
        "--train",
        zeros,
        "--output",
        tmp_path / "t",
        "--config",
        study["config"],
        phrase="diffraction is zero everywhere",
    )
    rng = np.random.default_rng(0)
    small = PtychoDataset(
        rng.random((20, 48, 48)).astype(np.float32),
        np.linspace(30, 60, 20),
        np.linspace(30, 60, 20),
        np.ones((48, 48), np.complex64),
        metadata={"nphotons": 1e4},
    )
    save_dataset(tmp_path / "n48.npz", small)
    refused(
        "train",
        "--train",
        tmp_path / "n48.npz",
        "--output",
        tmp_path / "t",
        "--config",
        study["config"],
        phrase="PtychoPINN works on [64, 128, 256] px patterns; this dataset holds 48x48",
    )
    refused(
        "reconstruct",
        "--bundle",
        study["bundle"],
        "--data",
        tmp_path / "n48.npz",
        "--output",
        tmp_path / "r",
        phrase="the model was trained on 64x64 patterns; the data has 48x48",
    )
    assert not (tmp_path / "t").exists() and not (tmp_path / "r").exists()


def test_reconstructing_positions_far_outside_without_an_object_is_refused(study, tmp_path):
    test = load_dataset(study["test"])
    far = edited(study, tmp_path, objectGuess=None, xcoords=test.xcoords + 1e6)
    refused(
        "reconstruct",
        "--bundle",
        study["bundle"],
        "--data",
        far,
        "--output",
        tmp_path / "r",
        phrase="positions must be object pixels",
    )


def test_all_zero_diffraction_is_refused_by_every_reader(study, tmp_path):
    zeros = edited(
        study, tmp_path, diffraction=np.zeros_like(load_dataset(study["test"]).diffraction)
    )
    refused(
        "reconstruct",
        "--bundle",
        study["bundle"],
        "--data",
        zeros,
        "--output",
        tmp_path / "r",
        phrase="diffraction is zero everywhere",
    )
    phase_c = tmp_path / "c"
    run_simulation(make_design(TINY), phase_c)
    manifest = json.loads((phase_c / "simulation_manifest.json").read_text())
    for split in ("train", "test"):  # zero data its manifest vouches for
        path = phase_c / "dose_10000" / f"{split}.npz"
        path.write_bytes(zeros.read_bytes())
        manifest["doses"][0]["files"][split]["sha256"] = sha256_file(path)
    (phase_c / "simulation_manifest.json").write_text(json.dumps(manifest))
    refused(
        "overlap",
        "--phase-c-root",
        phase_c,
        "--output-root",
        tmp_path / "d",
        "--config",
        study["config"],
        phrase="diffraction is zero everywhere",
    )
    result = invoke(
        "reconstruct-iterative",
        "--phase-c-root",
        phase_c,
        "--phase-d-root",
        tmp_path / "d",
        "--artifact-root",
        tmp_path / "f",
        "--view",
        "baseline",
        "--split",
        "test",
        "--iterations",
        "1",
    )
    # The job fails and says why.
    assert result.exit_code == 1 and "diffraction is zero everywhere" in result.stdout
    test = load_dataset(study["test"])
    cxi = write_cxi(
        tmp_path / "zeros.cxi",
        dataclasses.replace(test, diffraction=np.zeros_like(test.diffraction)),
    )
    refused("convert", cxi, tmp_path / "zeros.npz", phrase="diffraction is zero everywhere")


def test_a_changed_phase_c_file_is_refused(study, tmp_path):
    phase_c = tmp_path / "c"
    run_simulation(make_design(TINY), phase_c)
    path = phase_c / "dose_10000" / "test.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    refused(
        "reconstruct-iterative",
        "--phase-c-root",
        phase_c,
        "--phase-d-root",
        tmp_path / "d",
        "--artifact-root",
        tmp_path / "f",
        "--view",
        "baseline",
        phrase="test.npz changed since simulation_manifest.json was written",
    )


def test_damaged_files_are_refused(study, tmp_path):
    cxi = write_cxi(tmp_path / "scan.cxi", load_dataset(study["test"]))
    data = cxi.read_bytes()
    cxi.write_bytes(data[: len(data) // 2])
    refused("convert", cxi, tmp_path / "scan.npz", phrase="is damaged or truncated")
    result = invoke(
        "reconstruct",
        "--bundle",
        study["bundle"],
        "--data",
        study["test"],
        "--output",
        tmp_path / "r",
    )
    assert result.exit_code == 0, result.output
    product = tmp_path / "product.h5"
    assert invoke("convert", tmp_path / "r" / "reconstruction.npz", product).exit_code == 0
    with h5py.File(product, "r+") as f:
        obj = f["object"][()]
        obj[0, 0, 0] = np.nan
        f["object"][...] = obj
    refused(
        "convert", product, tmp_path / "p.npz", phrase="object contains 1 NaN or infinite values"
    )


def test_simulation_inputs_are_checked(tmp_path):
    refused(
        "simulate",
        "--preset",
        "smoke",
        "--dose",
        "1e400",
        "--output-root",
        tmp_path / "o",
        phrase="--dose must be finite photon counts per pattern, got [inf]",
    )
    np.savez(tmp_path / "obj.npz", objectGuess=np.zeros((160, 160), np.complex64))
    refused(
        "simulate",
        "--preset",
        "smoke",
        "--dose",
        "1000",
        "--object",
        tmp_path / "obj.npz",
        "--output-root",
        tmp_path / "o",
        phrase="objectGuess is zero everywhere",
    )
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------------
# Bundles


def _rewritten(study, path, edit, rehash=True):
    payload = torch.load(study["bundle"], weights_only=True)
    edit(payload)
    if rehash:
        payload["content_sha256"] = content_sha256(payload)
    torch.save(payload, path)
    return path


def test_bad_bundles_are_refused(study, tmp_path):
    args = ("--data", study["test"], "--output", tmp_path / "r")
    flipped = tmp_path / "flipped.pt"
    data = bytearray(study["bundle"].read_bytes())
    with zipfile.ZipFile(study["bundle"]) as archive:  # 4 KB inside the largest weight
        largest = max(archive.infolist(), key=lambda info: info.file_size)
        start = (
            largest.header_offset + 30 + len(largest.filename.encode()) + len(largest.extra) + 64
        )
    data[start : start + 4096] = bytes(b ^ 0xFF for b in data[start : start + 4096])
    flipped.write_bytes(bytes(data))
    refused("reconstruct", "--bundle", flipped, *args, phrase="damaged")
    refused(
        "reconstruct",
        "--bundle",
        _rewritten(study, tmp_path / "k.pt", lambda p: p.pop("architecture")),
        *args,
        phrase="missing entry 'architecture'",
    )
    refused(
        "reconstruct",
        "--bundle",
        _rewritten(study, tmp_path / "w.pt", lambda p: p["architecture"].update(width=3)),
        *args,
        phrase="size mismatch",
    )
    assert not (tmp_path / "r").exists()


def test_a_diverging_training_fails_and_writes_no_bundle(study, tmp_path):
    test = load_dataset(study["test"])
    huge = edited(  # in consistent units (the data check passes), but far beyond float32's range
        study,
        tmp_path,
        diffraction=test.diffraction * np.float32(1e30),
        probeGuess=test.probe * np.complex64(1e30),
    )
    refused(
        "train",
        "--train",
        huge,
        "--output",
        tmp_path / "t",
        "--config",
        study["config"],
        "--logger",
        "none",
        phrase="training diverged: the loss is",
        code=1,
    )
    assert not (tmp_path / "t" / "model.pt").exists()
    diverged = _rewritten(
        study, tmp_path / "nan.pt", lambda p: p["state_dict"]["log_scale"].fill_(float("nan"))
    )
    refused(
        "reconstruct",
        "--bundle",
        diverged,
        "--data",
        study["test"],
        "--output",
        tmp_path / "r",
        phrase="holds NaN or infinite weights",
    )
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------------------------
# Outputs, options and state


def test_outputs_the_system_refuses_name_the_path(study, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    refused(
        "simulate",
        "--preset",
        "smoke",
        "--dose",
        "1000",
        "--output-root",
        taken,
        phrase=str(taken),
    )
    refused(
        "reconstruct",
        "--bundle",
        study["bundle"],
        "--data",
        study["test"],
        "--output",
        taken,
        phrase=f"cannot write {taken}",
    )
    refused(
        "train",
        "--train",
        study["train"],
        "--output",
        taken,
        "--config",
        study["config"],
        phrase=str(taken),
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_names_the_path(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    refused(
        "simulate",
        "--preset",
        "smoke",
        "--dose",
        "1000",
        "--output-root",
        locked / "c",
        phrase=str(locked / "c"),
    )


def test_trainer_options_this_machine_cannot_honour(study, tmp_path):
    args = (
        "train",
        "--train",
        study["train"],
        "--output",
        tmp_path / "t",
        "--config",
        study["config"],
    )
    refused(*args, "--devices", "abc", phrase="--devices must be a count")
    refused(*args, "--accelerator", "tpu9", phrase="--accelerator must be one of")
    if not torch.cuda.is_available():
        refused(*args, "--accelerator", "gpu", phrase="this machine has no CUDA GPU")
    assert not (tmp_path / "t").exists()


def test_study_run_refuses_an_accelerator_before_any_work(tmp_path):
    args = ("study", "run", "--preset", "smoke", "--output", tmp_path / "s")
    refused(*args, "--accelerator", "tpu9", phrase="--accelerator must be one of")
    if not torch.cuda.is_available():
        refused(*args, "--accelerator", "gpu", phrase="this machine has no CUDA GPU")
    assert not (tmp_path / "s").exists()


def test_a_corrupt_study_state_cannot_be_resumed(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "study_state.json").write_text("{not json")
    refused(
        "study",
        "run",
        "--preset",
        "smoke",
        "--output",
        tmp_path / "s",
        "--resume",
        phrase="study_state.json cannot be read",
    )


def test_train_matrix_previews_and_empty_filters_leave_the_records_alone(study, tmp_path):
    args = (
        "train-matrix",
        "--phase-c-root",
        study["root"] / "c",
        "--phase-d-root",
        tmp_path / "d",
        "--artifact-root",
        tmp_path / "e",
        "--config",
        study["config"],
        "--view",
        "baseline",
        "--allow-missing-phase-d",
        "--logger",
        "none",
    )
    assert invoke(*args).exit_code == 0
    records = {path: path.read_bytes() for path in (tmp_path / "e").rglob("*") if path.is_file()}
    result = invoke(*args, "--dry-run")
    assert (
        result.exit_code == 0 and f"preview: {tmp_path / 'e' / TRAINING_PREVIEW}" in result.stdout
    )
    refused(
        *args,
        "--dose",
        "5",
        phrase="no training job matches --dose 5, --view baseline; the matrix has doses 10000",
    )
    refused(
        *args, "--gridsize", "2", phrase="no training job matches --view baseline, --gridsize 2"
    )
    assert {
        path: path.read_bytes()
        for path in (tmp_path / "e").rglob("*")
        if path.is_file() and path.name != TRAINING_PREVIEW
    } == records
    assert json.loads((tmp_path / "e" / TRAINING_MANIFEST).read_text())["jobs"][0]["status"] == "ok"
    result = invoke(*args, "--resume")
    assert result.exit_code == 0 and "(kept from an earlier run)" in result.stdout


# --------------------------------------------------------------------------------------------
# Issue 27: data that is not what it claims to be


def test_intensities_are_refused_by_every_command_that_reads_a_dataset(study, tmp_path):
    """Train, reconstruct and convert read through the one validator: intensities given as
    amplitudes are refused with how to convert them, and nothing is written."""
    intensities = edited(
        study, tmp_path, diffraction=np.square(load_dataset(study["test"]).diffraction)
    )
    refused(
        "train",
        "--train",
        intensities,
        "--output",
        tmp_path / "job",
        "--config",
        study["config"],
        phrase="looks like intensities",
    )
    refused(
        "reconstruct",
        "--bundle",
        study["bundle"],
        "--data",
        intensities,
        "--output",
        tmp_path / "rec",
        phrase="looks like intensities",
    )
    refused("convert", intensities, tmp_path / "out.cxi", phrase="looks like intensities")
    assert not any((tmp_path / name).exists() for name in ("job", "rec", "out.cxi"))


def test_object_files_are_checked_for_values_and_header_bombs(tmp_path):
    import zipfile

    args = ("simulate", "--preset", "smoke", "--dose", "1000", "--output-root", tmp_path / "o")
    np.savez(
        tmp_path / "nan_probe.npz",
        objectGuess=np.ones((160, 160), np.complex64),
        probeGuess=np.full((64, 64), np.nan, np.complex64),
    )
    refused(*args, "--object", tmp_path / "nan_probe.npz", phrase="probeGuess contains 4096 NaN")
    np.savez(tmp_path / "small.npz", objectGuess=np.ones((40, 160), np.complex64))
    refused(*args, "--object", tmp_path / "small.npz", phrase="smaller than the scan needs")
    with (
        zipfile.ZipFile(tmp_path / "bomb.npz", "w") as archive,
        archive.open("objectGuess.npy", "w", force_zip64=True) as member,
    ):
        header = {"descr": "<c8", "fortran_order": False, "shape": (100_000, 100_000)}
        np.lib.format.write_array_header_2_0(member, header)
    refused(*args, "--object", tmp_path / "bomb.npz", phrase="claims shape (100000, 100000)")
    assert not (tmp_path / "o").exists()


def test_a_full_disk_while_writing_a_cxi_file_is_one_message(study, tmp_path):
    """The file-size limit stands in for a full disk: HDF5 fails while writing or closing the
    file; the user sees one line and no partial file (issue 27, item 13)."""
    import resource
    import signal

    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    size = os.path.getsize(study["test"])
    try:
        for limit in (4096, size // 2, size - 2048):
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limits[1]))
            result = invoke("convert", study["test"], tmp_path / "out.cxi")
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
            assert result.exit_code == 2, result.output
            assert "Traceback" not in result.output and result.stderr.count("\n") == 1
            assert "file too large" in result.stderr.lower()
            assert list(tmp_path.iterdir()) == []
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)


def test_a_manifest_with_an_infinite_dose_is_refused(study, tmp_path):
    manifest = tmp_path / "c" / "simulation_manifest.json"
    manifest.parent.mkdir()
    original = (study["config"].parent / "c" / "simulation_manifest.json").read_text()
    manifest.write_text(original.replace('"dose": 10000.0', '"dose": Infinity', 1))
    refused(
        "train-matrix",
        "--phase-c-root",
        tmp_path / "c",
        "--phase-d-root",
        tmp_path / "d",
        "--artifact-root",
        tmp_path / "e",
        "--config",
        study["config"],
        "--dry-run",
        "--allow-missing-phase-d",
        phrase="Infinity is not a JSON number",
    )


def test_the_score_shift_bound_is_capped_as_in_the_design(study, tmp_path):
    refused(
        "score",
        study["test"],
        "--truth",
        study["test"],
        "--max-shift",
        "100",
        phrase="metrics.max_shift_px: Input should be less than or equal to 16",
    )


def test_designs_that_cannot_run_are_refused_before_anything_is_written(tmp_path):
    """An infinite learning rate used to crash the manifest write after every NPZ was written;
    a huge dose crashed the Poisson sampler (issue 27, items 8 and 11)."""
    config = tmp_path / "d.yaml"
    config.write_text("training:\n  learning_rate: .inf\n")
    out = ("--output-root", tmp_path / "o")
    refused("simulate", "--config", config, *out, phrase="training.learning_rate")
    refused(
        "simulate",
        "--preset",
        "smoke",
        "--dose",
        "1e300",
        *out,
        phrase="--dose must be at most 1e+12 photons per pattern",
    )
    config.write_text("doses: [1e300]\n")
    refused("study", "run", "--config", config, "--output", tmp_path / "s", phrase="at most 1e+12")
    assert not (tmp_path / "o").exists() and not (tmp_path / "s").exists()


def test_matrix_commands_refuse_an_artifact_root_in_use(study, tmp_path):
    """Issue 27, item 3: train-matrix and reconstruct-iterative lock their artifact root."""
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "e").mkdir()
        (tmp_path / "e" / ".ptypinn.lock").write_text(f"{holder.pid} ptypinn train-matrix\n")
        roots = ("--phase-c-root", study["root"] / "c", "--phase-d-root", tmp_path / "d")
        for command in ("train-matrix", "reconstruct-iterative"):
            refused(
                command,
                *roots,
                "--artifact-root",
                tmp_path / "e",
                "--config",
                study["config"],
                "--allow-missing-phase-d",
                phrase=f"in use by process {holder.pid}",
            )
    finally:
        holder.kill()
        holder.wait()


def test_a_one_pattern_dataset_is_reconstructed_fully(study, tmp_path):
    """Issue 27, item 9: the reconstruction and its figure are both written (the figure shows
    the whole object: one position spans no rectangle to crop to)."""
    test = load_dataset(study["test"])
    one = edited(
        study,
        tmp_path,
        diffraction=test.diffraction[:1],
        xcoords=test.xcoords[:1] + 0.3,
        ycoords=test.ycoords[:1] + 0.3,
        scan_index=test.scan_index[:1],
    )
    result = invoke(
        "reconstruct", "--bundle", study["bundle"], "--data", one, "--output", tmp_path / "r"
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "reconstruction.npz").is_file()
    assert (tmp_path / "r" / "reconstruction.png").is_file()
