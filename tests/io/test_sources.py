import numpy as np
import pytest

from ptypinn.io.dataset import DatasetError
from ptypinn.io.sources import has_probe, read_object, read_probe


def _npz(tmp_path, **arrays):
    path = tmp_path / "input.npz"
    np.savez(path, **arrays)
    return path


def test_a_valid_probe_and_object_come_back_as_complex64(tmp_path):
    probe = np.exp(1j * np.linspace(0, 1, 16 * 16)).reshape(16, 16)  # complex128
    obj = np.ones((40, 50), dtype=np.complex64)
    path = _npz(tmp_path, probeGuess=probe, objectGuess=obj)
    assert has_probe(path)
    read = read_probe(path, 16)
    assert read.dtype == np.complex64 and read.shape == (16, 16)
    np.testing.assert_allclose(read, probe, rtol=1e-6)
    np.testing.assert_array_equal(read_object(path), obj)


@pytest.mark.parametrize(
    ("probe", "found"),
    [
        (np.ones((20, 20), np.complex64), "complex64 (20, 20)"),  # larger than N
        (np.ones((16, 12), np.complex64), "complex64 (16, 12)"),  # not N x N
        (np.ones((16, 16), np.float32), "probeGuess is real (float32)"),
        (np.full((16, 16), np.nan + 0j, np.complex64), "256 NaN or infinite values"),
        (np.zeros((16, 16), np.complex64), "zero everywhere"),
        (np.full((16, 16), 1e300 + 0j), "256 NaN or infinite values"),  # beyond complex64
    ],
)
def test_a_probe_that_breaks_the_contract_is_one_message(tmp_path, probe, found):
    path = _npz(tmp_path, probeGuess=probe)
    with pytest.raises(DatasetError) as error:
        read_probe(path, 16)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    assert "probeGuess must be a finite, non-zero, complex 16x16 array" in message
    assert found in message


def test_missing_arrays_and_a_bad_object_are_named(tmp_path):
    path = _npz(tmp_path, objectGuess=np.ones((3, 4, 5), np.complex64))
    assert not has_probe(path)
    with pytest.raises(DatasetError, match=r"no 'probeGuess' array \(it holds \['objectGuess'\]\)"):
        read_probe(path, 16)
    with pytest.raises(
        DatasetError, match=r"2-D complex array; objectGuess is complex64 \(3, 4, 5\)"
    ):
        read_object(path)
    with pytest.raises(DatasetError, match="no such file"):
        read_object(tmp_path / "nope.npz")


@pytest.mark.parametrize(
    ("obj", "found"),
    [
        (np.ones((30, 30)), "objectGuess is real (float64)"),
        (np.full((30, 30), np.nan, np.complex64), "objectGuess contains 900 NaN or infinite"),
        (np.ones((30, 30), np.complex128) * 1e300, "objectGuess contains 900 NaN or infinite"),
        (np.zeros((30, 30), np.complex64), "objectGuess is zero everywhere"),
    ],
)
def test_an_object_that_breaks_the_contract_is_one_message(tmp_path, obj, found):
    """The dataset contract's value checks, on the user's object file (issue 27, item 12)."""
    with pytest.raises(DatasetError) as error:
        read_object(_npz(tmp_path, objectGuess=obj))
    assert found in str(error.value) and "\n" not in str(error.value)


def test_a_complex128_object_is_accepted_as_complex64(tmp_path):
    obj = np.ones((30, 30), np.complex128) * (0.5 + 0.5j)
    read = read_object(_npz(tmp_path, objectGuess=obj))
    assert read.dtype == np.complex64
    np.testing.assert_array_equal(read, obj.astype(np.complex64))
