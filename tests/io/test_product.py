import dataclasses
import json

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from ptypinn.cli import app
from ptypinn.io.dataset import load_dataset, read_npz
from ptypinn.io.formats import FileFormat, read_file, write_file
from ptypinn.io.hdf5 import FormatError
from ptypinn.io.product import (
    ROOT_DEFAULTS,
    product_from_arrays,
    product_to_arrays,
    read_product,
    write_product,
    write_product_npz,
)

from test_cli import run_main

SIZE = 16
SHAPE = (40, 50)  # (H, W)
PIXEL = (20e-9, 25e-9)
CENTER = (-1.5e-6, 2.0e-6)


@pytest.fixture
def reconstruction():
    rng = np.random.default_rng(3)
    obj = rng.normal(size=SHAPE) + 1j * rng.normal(size=SHAPE)
    probe = rng.normal(size=(SIZE, SIZE)) + 1j * rng.normal(size=(SIZE, SIZE))
    positions = np.stack(
        (rng.uniform(-4e-7, 4e-7, 9) + CENTER[0], rng.uniform(-3e-7, 3e-7, 9) + CENTER[1]), axis=1
    )
    return obj, probe, positions


def write_ptychodus_product(path, reconstruction, legacy=False, edit=None):
    """A product file as ptychodus writes it (``legacy``: older key spellings and layouts)."""
    obj, probe, positions = reconstruction
    with h5py.File(path, "w") as f:
        f.attrs["name"] = "scan 42"
        f.attrs["comments"] = "from ptychodus"
        f.attrs["detector_object_distance_m"] = 1.25
        f.attrs["probe_energy_eV" if legacy else "photon_energy_eV"] = 9000.0
        f.attrs["mass_attenuation_m2_kg" if legacy else "mass_attenuation_m2_per_kg"] = 0.5
        f.attrs["exposure_time_s"] = 0.1
        f.attrs["probe_photon_count"] = 1e8
        f["probe_position_x_m"], f["probe_position_y_m"] = positions[:, 0], positions[:, 1]
        if legacy:
            f["probe"] = np.stack((probe, probe / 3))  # two modes, no pixel attributes
            f["opr_weights"] = np.ones((len(positions), 1))
            f["costs"] = [3.0, 2.0, 1.5]
            obj_data = f.create_dataset("object", data=obj)
        else:
            f["probe_position_indexes"] = np.arange(len(positions)) + 100
            probe_data = f.create_dataset("probe", data=probe[None, None])
            probe_data.attrs["pixel_width_m"], probe_data.attrs["pixel_height_m"] = PIXEL
            obj_data = f.create_dataset("object", data=obj[None])
            f["object_layer_spacing_m"] = np.zeros(0)
            f["loss_epochs"], f["loss_values"] = [0, 5, 10], [3.0, 2.0, 1.5]
        obj_data.attrs["pixel_width_m"], obj_data.attrs["pixel_height_m"] = PIXEL
        obj_data.attrs["center_x_m"], obj_data.attrs["center_y_m"] = CENTER
        if edit is not None:
            edit(f)
    return path


def test_ptychodus_product_reads_into_object_pixels(reconstruction, tmp_path):
    obj, probe, positions = reconstruction
    product = read_product(write_ptychodus_product(tmp_path / "p.h5", reconstruction))
    assert product.photon_energy_eV == 9000.0 and product.detector_distance_m == 1.25
    assert product.pixel_size_m == PIXEL and product.object_center_m == CENTER
    np.testing.assert_array_equal(product.indexes, np.arange(9) + 100)
    np.testing.assert_array_equal(product.loss_epochs, [0, 5, 10])
    assert (
        product.metadata["name"] == "scan 42" and product.metadata["mass_attenuation_m2_kg"] == 0.5
    )

    arrays = product_to_arrays(product)
    # centred-pixel convention: x_m = center_x + pixel_x * (col - (W - 1) / 2)
    np.testing.assert_allclose(
        arrays["xcoords"], (positions[:, 0] - CENTER[0]) / PIXEL[0] + (SHAPE[1] - 1) / 2, atol=1e-9
    )
    np.testing.assert_allclose(
        arrays["ycoords"], (positions[:, 1] - CENTER[1]) / PIXEL[1] + (SHAPE[0] - 1) / 2, atol=1e-9
    )
    np.testing.assert_allclose(arrays["objectGuess"], obj, rtol=1e-6)
    np.testing.assert_allclose(arrays["probeGuess"], probe, rtol=1e-6)


def test_legacy_key_spellings_load(reconstruction, tmp_path):
    _, probe, _ = reconstruction
    product = read_product(
        write_ptychodus_product(tmp_path / "old.h5", reconstruction, legacy=True)
    )
    assert product.photon_energy_eV == 9000.0
    assert product.metadata["mass_attenuation_m2_kg"] == 0.5
    np.testing.assert_array_equal(product.loss_values, [3.0, 2.0, 1.5])
    np.testing.assert_array_equal(product.loss_epochs, [0, 1, 2])
    np.testing.assert_array_equal(product.probe, probe)
    assert product.metadata["probe_modes_dropped"] == 1
    assert product.position_indexes is None and product.obj.shape == SHAPE


def test_product_npz_product_round_trip(reconstruction, tmp_path):
    original = read_product(write_ptychodus_product(tmp_path / "p.h5", reconstruction))
    write_product_npz(tmp_path / "r.npz", original)
    write_product(tmp_path / "again.h5", product_from_arrays(read_npz(tmp_path / "r.npz"), "r.npz"))
    back = read_product(tmp_path / "again.h5")
    np.testing.assert_allclose(back.obj, original.obj, rtol=1e-6)
    np.testing.assert_allclose(back.probe, original.probe, rtol=1e-6)
    np.testing.assert_allclose(back.positions_m, original.positions_m, rtol=0, atol=1e-18)
    np.testing.assert_allclose(back.pixel_size_m, original.pixel_size_m, rtol=1e-15)
    np.testing.assert_allclose(back.object_center_m, original.object_center_m, rtol=1e-12)
    np.testing.assert_array_equal(back.indexes, original.indexes)
    np.testing.assert_array_equal(back.loss_epochs, original.loss_epochs)
    np.testing.assert_array_equal(back.loss_values, original.loss_values)
    assert (back.photon_energy_eV, back.detector_distance_m) == (
        original.photon_energy_eV,
        original.detector_distance_m,
    )
    assert back.metadata == {
        **ROOT_DEFAULTS,
        **original.metadata,
    }  # ptychodus's root attributes are always written
    with h5py.File(tmp_path / "again.h5") as f:  # readable by old and new ptychodus alike
        assert f.attrs["photon_energy_eV"] == f.attrs["probe_energy_eV"] == 9000.0
        assert f["probe"].shape == (1, 1, SIZE, SIZE) and f["object"].shape == (1, *SHAPE)


def test_dataset_to_product_keeps_positions_and_matches_the_cxi_frame(small_dataset, tmp_path):
    write_file(tmp_path / "d.h5", small_dataset, FileFormat.product)
    write_file(tmp_path / "d.cxi", small_dataset, FileFormat.cxi)
    product = read_product(tmp_path / "d.h5")
    arrays = product_to_arrays(product)
    np.testing.assert_allclose(arrays["xcoords"], small_dataset.xcoords, atol=1e-9)
    np.testing.assert_allclose(arrays["ycoords"], small_dataset.ycoords, atol=1e-9)
    np.testing.assert_array_equal(arrays["objectGuess"], small_dataset.obj)
    np.testing.assert_array_equal(arrays["probeGuess"], small_dataset.probe)
    assert product.metadata["nphotons"] == 1e4 and product.metadata["geometry_source"].startswith(
        "ptypinn default"
    )
    with h5py.File(
        tmp_path / "d.cxi"
    ) as f:  # CXI records sample motion: the negated probe positions
        translation = f["entry_1/sample_1/geometry_1/translation"][()]
    np.testing.assert_allclose(translation[:, :2], -product.positions_m, rtol=1e-12)


def _replace(name, value):
    def edit(f):
        del f[name]
        f[name] = value

    return edit


def _drop_attribute(owner, key):
    def edit(f):
        del f[owner].attrs[key]

    return edit


def _set_attribute(owner, key, value):
    def edit(f):
        f[owner].attrs[key] = value

    return edit


def _drop_probe(f):
    del f["probe"]


def _poison(name):
    def edit(f):
        values = f[name][()]
        values.flat[0] = np.nan
        f[name][...] = values

    return edit


def _oversized(name):
    """A data set whose declared shape claims terabytes (HDF5 stores none of it)."""

    def edit(f):
        dtype = f[name].dtype
        del f[name]
        f.create_dataset(name, shape=(1, 10**6, 10**6), dtype=dtype, chunks=(1, 64, 64))

    return edit


def _loop(name):
    def edit(f):
        del f[name]
        f[name] = h5py.SoftLink(f"/{name}")

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            _drop_attribute("/", "photon_energy_eV"),
            "no photon energy (eV): looked for attribute /@photon_energy_eV or /@probe_energy_eV",
        ),
        (
            _drop_attribute("/object", "center_x_m"),
            "no object centre x (m): looked for attribute /object@center_x_m",
        ),
        (_drop_probe, "no probe: looked for probe"),
        (
            _replace("probe_position_y_m", np.zeros(4)),
            "probe_position_x_m (9,) and probe_position_y_m (4,)",
        ),
        (_set_attribute("/probe", "pixel_width_m", 1e-6), "at /probe: probe pixel"),
        (_replace("loss_epochs", [1, 2]), "at /loss_epochs: 2 loss epochs for 3 loss values"),
        (_poison("object"), "at /object: object contains 1 NaN or infinite values"),
        (_poison("probe"), "at /probe: probe contains 1 NaN or infinite values"),
        (
            _poison("probe_position_x_m"),
            "at /probe_position_x_m: probe x positions contains 1 NaN",
        ),
        (_oversized("object"), "at object: shape (1, 1000000, 1000000) complex128 needs 14.6 TiB"),
        (_loop("probe"), "at probe: the link cannot be followed"),
    ],
)
def test_bad_product_files_give_specific_errors(reconstruction, tmp_path, edit, message):
    path = write_ptychodus_product(tmp_path / "bad.h5", reconstruction, edit=edit)
    with pytest.raises(FormatError) as error:
        read_product(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_multi_slice_objects_and_non_hdf5_files_are_refused(reconstruction, tmp_path):
    obj = reconstruction[0]
    path = write_ptychodus_product(
        tmp_path / "layers.h5", reconstruction, edit=_replace("object", np.stack((obj, obj)))
    )
    with pytest.raises(FormatError, match="multi-slice"):
        read_product(path)
    (tmp_path / "text.h5").write_bytes(b"\x00" * 64)
    with pytest.raises(FormatError, match="is not an HDF5 file"):
        read_product(tmp_path / "text.h5")


def test_conversions_that_lack_a_field_are_refused(reconstruction, small_dataset, tmp_path):
    product = read_product(write_ptychodus_product(tmp_path / "p.h5", reconstruction))
    with pytest.raises(FormatError, match="no diffraction patterns"):
        write_file(tmp_path / "p.cxi", product, FileFormat.cxi)
    without_object = dataclasses.replace(small_dataset, obj=None)
    with pytest.raises(FormatError, match="missing \\['objectGuess'\\]"):
        write_file(tmp_path / "d.h5", without_object, FileFormat.product)
    assert not (tmp_path / "p.cxi").exists() and not (tmp_path / "d.h5").exists()


def test_cli_convert_npz_to_product_and_back(
    small_dataset, reconstruction, tmp_path, monkeypatch, capsys
):
    write_file(tmp_path / "d.npz", small_dataset, FileFormat.npz)
    runner = CliRunner()
    result = runner.invoke(app, ["convert", str(tmp_path / "d.npz"), str(tmp_path / "d.h5")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["convert", str(tmp_path / "d.h5"), str(tmp_path / "r.out"), "--to", "npz"]
    )
    assert result.exit_code == 0, result.output
    recon = read_file(tmp_path / "r.out", FileFormat.npz)
    np.testing.assert_array_equal(recon.obj, load_dataset(tmp_path / "d.npz").obj)

    # a PtychoPINN reconstruction.npz (as `ptypinn reconstruct` writes it) opens as a product
    obj, probe, _ = reconstruction
    geometry = {
        "photon_energy_eV": 9000.0,
        "detector_distance_m": 1.25,
        "object_pixel_size_m": list(PIXEL),
        "position_origin_m": [1e-6, 2e-6],
    }
    np.savez(
        tmp_path / "reconstruction.npz",
        objectGuess=obj.astype(np.complex64),
        weights=np.ones(SHAPE),
        xcoords=np.array([10.0, 20.0]),
        ycoords=np.array([12.0, 14.0]),
        probeGuess=probe.astype(np.complex64),
        metadata=np.array(json.dumps({"geometry": geometry})),
    )
    result = runner.invoke(
        app, ["convert", str(tmp_path / "reconstruction.npz"), str(tmp_path / "reconstruction.h5")]
    )
    assert result.exit_code == 0, result.output
    product = read_product(tmp_path / "reconstruction.h5")
    np.testing.assert_allclose(
        product.positions_m,
        [
            [1e-6 + 10 * PIXEL[0], 2e-6 + 12 * PIXEL[1]],
            [1e-6 + 20 * PIXEL[0], 2e-6 + 14 * PIXEL[1]],
        ],
        rtol=1e-12,
    )
    assert product.pixel_size_m == PIXEL and product.photon_energy_eV == 9000.0

    path = write_ptychodus_product(tmp_path / "p.h5", reconstruction)
    code, out = run_main(monkeypatch, capsys, "convert", str(path), str(tmp_path / "p.cxi"))
    assert (
        code == 2
        and "error:" in out.err
        and "no diffraction patterns" in out.err
        and "Traceback" not in out.err
    )
