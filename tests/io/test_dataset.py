import json

import numpy as np
import pytest

from ptypinn.io.artifacts import write_npz
from ptypinn.io.dataset import (
    DatasetError,
    PtychoDataset,
    load_dataset,
    save_dataset,
    validate_arrays,
)


def make_arrays(n=6, size=8):
    rng = np.random.default_rng(1)
    return {
        "diffraction": rng.random((n, size, size)).astype(np.float32),
        "xcoords": np.linspace(5, 20, n),
        "ycoords": np.linspace(6, 18, n),
        "probeGuess": np.ones((size, size), np.complex64),
        "objectGuess": np.ones((30, 30), np.complex64),
        "scan_index": np.zeros(n, np.int64),
        "metadata": np.array(json.dumps({"nphotons": 1e4})),
    }


def test_valid_arrays_pass():
    validate_arrays(make_arrays())


def broken(**changes):
    arrays = make_arrays()
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return arrays


@pytest.mark.parametrize(
    ("arrays", "phrase"),
    [
        (broken(diffraction=None), "missing key 'diffraction'"),
        (
            {**broken(diffraction=None), "diff3d": np.zeros((6, 8, 8), np.float32)},
            "'diff3d' is the upstream raw-data name",
        ),
        (broken(diffraction=np.ones((6, 8, 8), np.int32)), "looks like photon counts (intensity)"),
        (
            broken(diffraction=np.ones((6, 8, 8), np.float64)),
            "diffraction must be float32, got float64",
        ),
        (broken(diffraction=np.ones((6, 8, 8), np.complex64)), "diffraction is complex"),
        (
            broken(diffraction=np.full((6, 8, 8), np.nan, np.float32)),
            "diffraction contains 384 NaN",
        ),
        (broken(diffraction=-np.ones((6, 8, 8), np.float32)), "negative values"),
        (broken(diffraction=np.zeros((6, 8, 8), np.float32)), "diffraction is zero everywhere"),
        (broken(diffraction=np.ones((6, 8, 9), np.float32)), "shape (n, N, N)"),
        (broken(xcoords=np.zeros(5)), "xcoords has 5 entries but diffraction has 6 patterns"),
        (broken(ycoords=np.zeros(6, np.float32)), "ycoords must be float64"),
        (broken(probeGuess=np.ones((9, 9), np.complex64)), "probeGuess has shape (9, 9)"),
        (broken(probeGuess=np.ones((8, 8), np.complex128)), "probeGuess must be complex64"),
        (broken(probeGuess=np.zeros((8, 8), np.complex64)), "probeGuess is zero everywhere"),
        (broken(xcoords=np.full(6, 40.0)), "6 positions lie outside objectGuess"),
        (broken(scan_index=np.zeros(6, np.float64)), "scan_index must be a 1-D integer array"),
        (broken(metadata=np.array("not json")), "metadata must be a JSON object"),
        ({**make_arrays(), "extra": np.zeros(2)}, "unexpected keys ['extra']"),
    ],
)
def test_validator_names_each_problem(arrays, phrase):
    with pytest.raises(DatasetError) as caught:
        validate_arrays(arrays)
    assert phrase in str(caught.value)


def test_grouping_requirements():
    with pytest.raises(DatasetError, match="K=3 is smaller than C=gridsize\\^2=4"):
        validate_arrays(make_arrays(), gridsize=2, neighbor_count=3)
    with pytest.raises(DatasetError, match="only 6 positions, fewer than the C=9"):
        validate_arrays(make_arrays(), gridsize=3)


def test_every_problem_is_listed_at_once():
    arrays = broken(xcoords=np.zeros(5), probeGuess=np.ones((9, 9), np.complex64))
    with pytest.raises(DatasetError) as caught:
        validate_arrays(arrays)
    assert "xcoords has 5 entries" in str(caught.value) and "probeGuess has shape" in str(
        caught.value
    )


def test_round_trip_without_pickle(tmp_path):
    arrays = make_arrays()
    dataset = PtychoDataset(
        diffraction=arrays["diffraction"],
        xcoords=arrays["xcoords"],
        ycoords=arrays["ycoords"],
        probe=arrays["probeGuess"],
        obj=arrays["objectGuess"],
        scan_index=arrays["scan_index"],
        metadata={"nphotons": 1e4, "note": "x"},
    )
    path = save_dataset(tmp_path / "d.npz", dataset)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(arrays)
    loaded = load_dataset(path)
    np.testing.assert_array_equal(loaded.diffraction, dataset.diffraction)
    np.testing.assert_array_equal(loaded.positions, dataset.positions)
    assert loaded.metadata == {"nphotons": 1e4, "note": "x"}
    sub = loaded.subset(np.array([4, 1]), view="dense")
    np.testing.assert_array_equal(sub.xcoords, dataset.xcoords[[4, 1]])
    assert sub.metadata["view"] == "dense" and sub.count == 2


def test_same_content_gives_identical_bytes(tmp_path):
    arrays = make_arrays()
    first = write_npz(tmp_path / "a.npz", arrays).read_bytes()
    second = write_npz(tmp_path / "b.npz", arrays).read_bytes()
    assert first == second


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.npz"
    with pytest.raises(TypeError, match="object dtype"):
        write_npz(target, {"ok": np.zeros(3), "bad": np.array([{"a": 1}], dtype=object)})
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_an_invalid_dataset(tmp_path):
    arrays = make_arrays()
    dataset = PtychoDataset(
        diffraction=arrays["diffraction"].astype(np.float64),
        xcoords=arrays["xcoords"],
        ycoords=arrays["ycoords"],
        probe=arrays["probeGuess"],
    )
    with pytest.raises(DatasetError, match="float32"):
        save_dataset(tmp_path / "d.npz", dataset)
    assert not (tmp_path / "d.npz").exists()


def test_unreadable_files(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable NPZ"):
        load_dataset(garbage)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, diffraction=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DatasetError, match="pickle"):
        load_dataset(pickled)


# --------------------------------------------------------------------------------------------
# Physical scale: intensities and photon counts are not amplitudes (issue 27, item 1)


def bright(dataset, factor=4.0):
    """The same measurement with the probe (and so the amplitudes) in units ``factor`` times
    smaller: the far-field peak is then well above 1, as for the study's probes."""
    arrays = dataset.to_arrays()
    arrays["diffraction"] = (arrays["diffraction"] * factor).astype(np.float32)
    arrays["probeGuess"] = (arrays["probeGuess"] * factor).astype(np.complex64)
    return arrays


def test_normalised_amplitudes_carry_less_energy_than_the_probe(small_dataset):
    from ptypinn.io.dataset import energy_ratio

    ratio = energy_ratio(small_dataset.diffraction, small_dataset.probe)
    assert 0.2 < ratio <= 1.05  # a passive object at 1e4 photons
    validate_arrays(small_dataset.to_arrays())


def test_intensities_are_refused_with_how_to_convert(small_dataset):
    arrays = bright(small_dataset)
    validate_arrays(arrays)
    arrays["diffraction"] = (arrays["diffraction"].astype(np.float64) ** 2).astype(np.float32)
    with pytest.raises(DatasetError) as caught:
        validate_arrays(arrays)
    message = str(caught.value)
    assert "times the probe's energy" in message
    assert "looks like intensities" in message and "np.sqrt(diffraction)" in message


def test_photon_counts_are_refused_with_how_to_normalise(small_dataset):
    arrays = bright(small_dataset, 1.0)
    scale = small_dataset.metadata["dose_scale"]
    counts = np.round((scale * arrays["diffraction"].astype(np.float64)) ** 2)
    arrays["diffraction"] = counts.astype(np.float32)
    with pytest.raises(DatasetError, match="looks like photon counts") as caught:
        validate_arrays(arrays)
    assert "sqrt(counts) / s" in str(caught.value)


def test_every_reader_applies_the_scale_check(tmp_path, small_dataset):
    from ptypinn.io.formats import FileFormat, read_file

    arrays = bright(small_dataset)
    arrays["diffraction"] = np.square(arrays["diffraction"])
    write_npz(tmp_path / "intensity.npz", arrays)
    with pytest.raises(DatasetError, match="looks like intensities"):
        load_dataset(tmp_path / "intensity.npz")
    with pytest.raises(DatasetError, match="looks like intensities"):
        read_file(tmp_path / "intensity.npz", FileFormat.npz)


# --------------------------------------------------------------------------------------------
# Header bombs: shapes are read from the headers before anything is loaded (issue 27, item 10)


def bomb_npz(path, shape, dtype=np.float32, extra=None):
    """An NPZ whose ``diffraction`` header claims ``shape`` but holds no data."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("diffraction.npy", "w", force_zip64=True) as member:
            header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_2_0(member, header)
        for key, value in (extra or {}).items():
            with archive.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, value)
    return path


def test_a_header_claiming_more_than_the_file_holds_is_refused_before_loading(tmp_path):
    path = bomb_npz(tmp_path / "bomb.npz", (10**9, 64, 64))
    with pytest.raises(DatasetError, match=r"claims shape \(1000000000, 64, 64\)"):
        load_dataset(path)


def test_arrays_larger_than_memory_are_refused(tmp_path, monkeypatch):
    from ptypinn.io import limits

    path = tmp_path / "d.npz"
    write_npz(path, make_arrays())
    monkeypatch.setattr(limits, "memory_limit_bytes", lambda: 1000)  # a machine of 2 kB
    with pytest.raises(DatasetError, match="more than the 1e\\+03 B allowed here"):
        load_dataset(path)


def test_object_arrays_are_refused_from_the_header(tmp_path):
    import zipfile

    path = tmp_path / "objects.npz"
    with zipfile.ZipFile(path, "w") as archive, archive.open("diffraction.npy", "w") as member:
        header = {"descr": "|O", "fortran_order": False, "shape": (10**12,)}
        np.lib.format.write_array_header_1_0(member, header)
    with pytest.raises(DatasetError, match="pickle"):
        load_dataset(path)
