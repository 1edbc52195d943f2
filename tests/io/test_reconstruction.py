import dataclasses

import numpy as np
import pytest

from ptypinn.io.dataset import DatasetError, save_dataset
from ptypinn.io.hdf5 import FormatError
from ptypinn.io.reconstruction import (
    Reconstruction,
    ReconstructionInput,
    read_reconstruction,
    write_reconstruction,
)
from ptypinn.physics.geometry import Geometry, default_geometry, object_grid_shape


@pytest.fixture
def reconstruction(rng):
    obj = (rng.normal(size=(40, 50)) + 1j * rng.normal(size=(40, 50))).astype(np.complex64)
    probe = (rng.normal(size=(16, 16)) + 1j * rng.normal(size=(16, 16))).astype(np.complex64)
    return Reconstruction(
        method="cdtools",
        obj=obj,
        probe=probe,
        positions_px=rng.uniform(8, 30, size=(7, 2)),
        geometry=Geometry(9000.0, 1.25, (20e-9, 25e-9), (1e-6, -2e-6), "measured"),
        losses=np.array([3.0, 2.0, 1.5]),
        iterations=3,
        wall_time_s=1.25,
        metadata={"options": {"iterations": 3}, "dose": 1e4},
    )


def test_npz_round_trip_keeps_every_field(reconstruction, tmp_path):
    path = write_reconstruction(tmp_path / "r.npz", reconstruction)
    back = read_reconstruction(path)
    for name in ("method", "iterations", "wall_time_s", "metadata", "geometry"):
        assert getattr(back, name) == getattr(reconstruction, name), name
    for name in ("obj", "probe", "positions_px", "losses", "epochs"):
        np.testing.assert_array_equal(getattr(back, name), getattr(reconstruction, name))
    assert back.seconds_per_iteration == pytest.approx(1.25 / 3)
    again = write_reconstruction(tmp_path / "again.npz", back)
    assert again.read_bytes() == path.read_bytes()  # byte-reproducible
    with np.load(path, allow_pickle=False) as npz:  # readable without ptypinn
        assert set(npz.files) == {
            "objectGuess",
            "probeGuess",
            "xcoords",
            "ycoords",
            "loss_epochs",
            "loss_values",
            "metadata",
        }


def test_a_dataset_npz_reads_as_a_reconstruction_with_the_default_geometry(small_dataset, tmp_path):
    rec = read_reconstruction(save_dataset(tmp_path / "d.npz", small_dataset))
    np.testing.assert_array_equal(rec.obj, small_dataset.obj)
    np.testing.assert_array_equal(rec.positions_px, small_dataset.positions)
    assert rec.geometry == default_geometry(32) and rec.method == "" and rec.iterations == 0
    assert rec.metadata["nphotons"] == 1e4


def test_bad_reconstruction_files_are_refused(reconstruction, tmp_path):
    np.savez(tmp_path / "bare.npz", objectGuess=reconstruction.obj)
    with pytest.raises(FormatError, match="missing \\['probeGuess', 'xcoords', 'ycoords'\\]"):
        read_reconstruction(tmp_path / "bare.npz")
    (tmp_path / "text.npz").write_text("no")
    with pytest.raises(DatasetError, match="not a readable NPZ"):
        read_reconstruction(tmp_path / "text.npz")


def test_input_from_a_dataset_never_carries_the_truth(small_dataset):
    inp = ReconstructionInput.from_dataset(small_dataset)
    assert inp.initial_object is None
    assert not any(value is small_dataset.obj for value in vars(inp).values())
    assert inp.object_shape == small_dataset.obj.shape  # the truth's grid, not its values
    assert inp.geometry == default_geometry(32) and inp.count == small_dataset.count


def test_without_an_object_the_grid_holds_every_window_and_its_bilinear_neighbour(small_dataset):
    bare = dataclasses.replace(small_dataset, obj=None)
    height, width = ReconstructionInput.from_dataset(bare).object_shape
    x, y = bare.positions.T
    # last window row: floor(y) + N/2 (bilinear neighbour), the last pixel of the grid at most
    assert np.floor(y.max()) + 16 <= height - 1 and np.floor(x.max()) + 16 <= width - 1
    assert (height, width) == (int(np.ceil(y.max())) + 17, int(np.ceil(x.max())) + 17)
    assert object_grid_shape(np.array([[3.0, 2.0]]), 32) == (32, 32)  # never smaller than a window


def test_input_checks_shapes(small_dataset):
    inp = ReconstructionInput.from_dataset(small_dataset)
    with pytest.raises(DatasetError, match="positions must be"):
        dataclasses.replace(inp, positions_px=inp.positions_px[:-1])
    with pytest.raises(DatasetError, match="non-empty"):
        dataclasses.replace(inp, diffraction=inp.diffraction[:, :, :30])
    with pytest.raises(DatasetError, match="probe must be 32x32"):
        dataclasses.replace(inp, probe=inp.probe[:16, :16])
    with pytest.raises(DatasetError, match="starting object"):
        dataclasses.replace(inp, initial_object=np.ones((5, 5), np.complex64))


def test_nan_positions_are_refused(reconstruction, tmp_path):
    """Issue 27, item 4: `score` and `convert` never carry NaN positions into a product."""
    positions = reconstruction.positions_px.copy()
    positions[1, 0] = np.nan
    write_reconstruction(
        tmp_path / "nan.npz", dataclasses.replace(reconstruction, positions_px=positions)
    )
    with pytest.raises(FormatError, match="hold 1 NaN or infinite positions"):
        read_reconstruction(tmp_path / "nan.npz")
