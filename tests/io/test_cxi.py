import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ptypinn.cli import app
from ptypinn.io.cxi import read_cxi, write_cxi
from ptypinn.io.dataset import load_dataset
from ptypinn.io.hdf5 import FormatError
from ptypinn.physics.forward import exit_waves, far_field, raster_scan
from ptypinn.physics.geometry import default_geometry
from ptypinn.physics.probes import disk_probe

from test_cli import run_main

# Physical constants typed in independently of ptypinn.physics.geometry.
PLANCK = 6.62607015e-34
LIGHT = 299792458.0
EV = 1.602176634e-19

SIZE = 32
ENERGY_EV = 8000.0
DISTANCE = 1.5
PITCH = (55e-6, 75e-6)  # different x and y pitches catch swapped axes
OFFSET = np.array([3e-6, -2e-6])  # stage position of the scan origin, arbitrary


def pixel_size():
    wavelength = PLANCK * LIGHT / (ENERGY_EV * EV)
    return np.array([wavelength * DISTANCE / (SIZE * p) for p in PITCH])


@pytest.fixture
def foreign_scan():
    """Object, probe, probe positions (object px) and photon counts of another tool's experiment."""
    rng = np.random.default_rng(7)
    shape = (60, 70)
    obj = (rng.uniform(0.6, 1.0, shape) * np.exp(1j * rng.uniform(-0.5, 0.5, shape))).astype(
        np.complex64
    )
    probe = disk_probe(SIZE, 14) * 7.0  # arbitrary units
    positions = raster_scan(shape, SIZE, 7.0, jitter=1.5, rng=rng)
    with torch.no_grad():
        amplitude = far_field(
            exit_waves(torch.from_numpy(obj), torch.from_numpy(probe), torch.from_numpy(positions))
        ).numpy()
    counts = rng.poisson(amplitude.astype(np.float64) ** 2).astype(np.uint32)
    return obj, probe, positions, counts


def write_foreign_cxi(
    path, scan, *, energy="J", translations=None, data=True, probe=True, mask=None
):
    """A CXI 1.6 file laid out as other tools write it: sample-motion translations, energy in J."""
    _, probe_array, positions, counts = scan
    translation = np.zeros((len(positions), 3))
    translation[:, :2] = (
        -(positions * pixel_size()) + OFFSET
    )  # the sample moves opposite to the probe
    translation[:, 2] = 1e-3
    if translations is not None:
        translation = translation[:translations]
    with h5py.File(path, "w") as f:
        f["cxi_version"] = 160
        source = f.create_group("entry_1/instrument_1/source_1")
        if energy == "J":
            source["energy"] = ENERGY_EV * EV
        elif energy == "eV":
            source["energy"] = ENERGY_EV
        elif energy == "wavelength":
            source["wavelength"] = PLANCK * LIGHT / (ENERGY_EV * EV)
        detector = f.create_group("entry_1/instrument_1/detector_1")
        detector["distance"] = DISTANCE
        detector["x_pixel_size"], detector["y_pixel_size"] = PITCH
        if data:
            detector["data"] = counts
        f.create_group("entry_1/data_1")["data"] = h5py.SoftLink(
            "/entry_1/instrument_1/detector_1/data"
        )
        if mask is not None:
            detector["mask"] = mask
        f["entry_1/sample_1/geometry_1/translation"] = translation
        if probe:
            source["illumination"] = probe_array[None]  # one leading mode axis
    return path


def test_npz_cxi_npz_round_trip_preserves_arrays_and_geometry(small_dataset, tmp_path):
    write_cxi(tmp_path / "data.cxi", small_dataset)
    back = read_cxi(tmp_path / "data.cxi")
    np.testing.assert_allclose(back.diffraction, small_dataset.diffraction, rtol=1e-6, atol=0)
    np.testing.assert_allclose(back.xcoords, small_dataset.xcoords, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back.ycoords, small_dataset.ycoords, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(back.probe, small_dataset.probe)
    np.testing.assert_array_equal(back.obj, small_dataset.obj)
    np.testing.assert_array_equal(back.scan_index, small_dataset.scan_index)
    assert back.metadata["dose_scale"] == small_dataset.metadata["dose_scale"]
    assert back.metadata["nphotons"] == 1e4

    expected = default_geometry(SIZE).to_metadata(SIZE)
    assert back.metadata["geometry"]["source"] == expected["source"]
    for key in (
        "photon_energy_eV",
        "detector_distance_m",
        "detector_pixel_size_m",
        "object_pixel_size_m",
        "position_origin_m",
    ):
        np.testing.assert_allclose(
            back.metadata["geometry"][key], expected[key], rtol=1e-12, atol=1e-30
        )

    # ... and through the canonical NPZ and back to CXI: intensities are the photon counts again
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["convert", str(tmp_path / "data.cxi"), str(tmp_path / "data.npz")]
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app, ["convert", str(tmp_path / "data.npz"), str(tmp_path / "again.cxi")]
        ).exit_code
        == 0
    )
    with h5py.File(tmp_path / "again.cxi") as f:
        intensity = f["entry_1/data_1/data"][()]
        translation = f["entry_1/sample_1/geometry_1/translation"][()]
        energy_J = f["entry_1/instrument_1/source_1/energy"][()]
    counts = (
        small_dataset.metadata["dose_scale"] * small_dataset.diffraction.astype(np.float64)
    ) ** 2
    np.testing.assert_allclose(intensity, np.round(counts), rtol=1e-5, atol=1e-3)
    dx = pixel_size_for(energy_J / EV, 2.0, 75e-6)
    np.testing.assert_allclose(-translation[:, 0] / dx, small_dataset.xcoords, atol=1e-9)
    np.testing.assert_allclose(load_dataset(tmp_path / "data.npz").diffraction, back.diffraction)


def pixel_size_for(energy_eV, distance, pitch):
    return PLANCK * LIGHT / (energy_eV * EV) * distance / (SIZE * pitch)


def test_foreign_cxi_loads_with_probe_positions_opposite_to_sample_translations(
    foreign_scan, tmp_path
):
    _, probe, positions, counts = foreign_scan
    dataset = read_cxi(write_foreign_cxi(tmp_path / "foreign.cxi", foreign_scan))

    # probe position = -translation; the origin puts the top-left patch at pixel N/2
    expected = positions - positions.min(axis=0) + SIZE // 2
    np.testing.assert_allclose(dataset.xcoords, expected[:, 0], atol=1e-9)
    np.testing.assert_allclose(dataset.ycoords, expected[:, 1], atol=1e-9)
    geometry = dataset.metadata["geometry"]
    np.testing.assert_allclose(geometry["object_pixel_size_m"], pixel_size(), rtol=1e-12)
    np.testing.assert_allclose(geometry["photon_energy_eV"], ENERGY_EV, rtol=1e-12)
    origin = (positions.min(axis=0) - SIZE // 2) * pixel_size() - OFFSET
    np.testing.assert_allclose(geometry["position_origin_m"], origin, rtol=0, atol=1e-15)
    span = positions.max(axis=0) - positions.min(axis=0)
    assert dataset.metadata["object_shape"] == [
        SIZE + 1 + int(np.ceil(span[1])),
        SIZE + 1 + int(np.ceil(span[0])),
    ]

    # amplitude = sqrt(I) / s with mean sum(A^2) = sum |probe|^2; s is stored
    scale = dataset.metadata["dose_scale"]
    np.testing.assert_allclose(
        dataset.diffraction.astype(np.float64), np.sqrt(counts) / scale, rtol=1e-6
    )
    np.testing.assert_allclose(
        np.mean(np.sum(dataset.diffraction.astype(np.float64) ** 2, axis=(1, 2))),
        np.sum(np.abs(probe) ** 2),
        rtol=1e-5,
    )
    np.testing.assert_allclose(dataset.metadata["nphotons"], counts.sum(axis=(1, 2)).mean())
    np.testing.assert_array_equal(dataset.probe, probe)
    assert dataset.obj is None


def test_mask_bits_zero_bad_pixels_and_keep_informational_ones(foreign_scan, tmp_path):
    counts = foreign_scan[3]
    mask = np.zeros((SIZE, SIZE), dtype=np.uint32)
    mask[3, 4] = 0x1  # invalid
    mask[5, 6] = 0x1000  # signal above background: informational, still a good pixel
    mask[7, 8] = 0x4 | 0x1000  # hot
    dataset = read_cxi(write_foreign_cxi(tmp_path / "masked.cxi", foreign_scan, mask=mask))
    assert not dataset.diffraction[:, 3, 4].any() and not dataset.diffraction[:, 7, 8].any()
    scale = dataset.metadata["dose_scale"]
    np.testing.assert_allclose(
        dataset.diffraction[:, 5, 6], np.sqrt(counts[:, 5, 6]) / scale, rtol=1e-6
    )
    assert dataset.metadata["masked_pixels"] == [[3, 4], [7, 8]]

    # the mask survives a write: bad pixels come back as invalid (0x1)
    write_cxi(tmp_path / "again.cxi", dataset)
    with h5py.File(tmp_path / "again.cxi") as f:
        written = f["entry_1/instrument_1/detector_1/mask"][()]
    assert sorted(map(list, np.argwhere(written))) == [[3, 4], [7, 8]] and set(
        written[written > 0]
    ) == {1}


def test_wavelength_stands_in_for_energy(foreign_scan, tmp_path):
    by_energy = read_cxi(write_foreign_cxi(tmp_path / "e.cxi", foreign_scan))
    by_wavelength = read_cxi(
        write_foreign_cxi(tmp_path / "w.cxi", foreign_scan, energy="wavelength")
    )
    np.testing.assert_allclose(
        by_wavelength.metadata["geometry"]["object_pixel_size_m"],
        by_energy.metadata["geometry"]["object_pixel_size_m"],
        rtol=1e-12,
    )
    np.testing.assert_allclose(by_wavelength.xcoords, by_energy.xcoords, atol=1e-9)


def test_without_a_probe_the_guess_explains_the_mean_amplitude(foreign_scan, tmp_path):
    dataset = read_cxi(write_foreign_cxi(tmp_path / "noprobe.cxi", foreign_scan, probe=False))
    assert dataset.metadata["probe_source"].startswith("estimated")
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(dataset.probe, norm="ortho")))
    mean_amplitude = (
        dataset.diffraction.astype(np.float64).mean(axis=0) * dataset.metadata["dose_scale"]
    )
    np.testing.assert_allclose(
        spectrum, mean_amplitude, rtol=1e-4, atol=1e-4 * mean_amplitude.max()
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"data": False},
            "no diffraction frames: looked for /entry_1/data_1/data and "
            "/entry_1/instrument_1/detector_1/data",
        ),
        ({"translations": 5}, "at /entry_1/sample_1/geometry_1/translation: 5 translations for"),
        (
            {"energy": None},
            "no photon energy: looked for /entry_1/instrument_1/source_1/energy (J)",
        ),
        (
            {"energy": "eV"},
            "at /entry_1/instrument_1/source_1/energy: photon energy 8000 is not in joules",
        ),
    ],
)
def test_bad_cxi_files_give_specific_errors(foreign_scan, tmp_path, options, message):
    path = write_foreign_cxi(tmp_path / "bad.cxi", foreign_scan, **options)
    with pytest.raises(FormatError) as error:
        read_cxi(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_a_truncated_file_is_reported_as_damaged(foreign_scan, tmp_path):
    path = write_foreign_cxi(tmp_path / "scan.cxi", foreign_scan)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="damaged or truncated"):
        read_cxi(path)


def test_not_hdf5_or_missing_file(tmp_path):
    (tmp_path / "text.cxi").write_text("not hdf5")
    with pytest.raises(FormatError, match="is not an HDF5 file"):
        read_cxi(tmp_path / "text.cxi")
    with pytest.raises(FormatError, match="no such file"):
        read_cxi(tmp_path / "absent.cxi")


def test_cli_convert_reports_a_bad_file_without_traceback(
    foreign_scan, tmp_path, monkeypatch, capsys
):
    path = write_foreign_cxi(tmp_path / "bad.cxi", foreign_scan, translations=3)
    code, out = run_main(monkeypatch, capsys, "convert", str(path), str(tmp_path / "out.npz"))
    assert code == 2
    assert (
        "error:" in out.err
        and "3 translations for" in out.err
        and "Traceback" not in out.err + out.out
    )
    assert not (tmp_path / "out.npz").exists()

    good = write_foreign_cxi(tmp_path / "good.cxi", foreign_scan)
    code, out = run_main(
        monkeypatch, capsys, "convert", str(good), str(tmp_path / "out.data"), "--to", "npz"
    )
    assert code == 0 and load_dataset(tmp_path / "out.data").count == len(foreign_scan[2])


# Header bombs and link loops are refused from the declared shapes (issue 27, item 10)


def _edited(path, edit):
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def test_frames_claiming_more_than_memory_are_refused_before_reading(foreign_scan, tmp_path):
    def bomb(f):
        del f["entry_1/instrument_1/detector_1/data"]
        f.create_dataset(
            "entry_1/instrument_1/detector_1/data",
            shape=(10**9, SIZE, SIZE),
            dtype="f4",
            chunks=(1, SIZE, SIZE),
        )

    path = _edited(write_foreign_cxi(tmp_path / "bomb.cxi", foreign_scan), bomb)
    with pytest.raises(FormatError, match=r"shape \(1000000000, 32, 32\) float32 needs 7.45 TiB"):
        read_cxi(path)


def test_translations_claiming_more_rows_than_frames_are_refused_unread(foreign_scan, tmp_path):
    def bomb(f):
        name = "entry_1/sample_1/geometry_1/translation"
        del f[name]
        f.create_dataset(name, shape=(10**11, 3), dtype="f8", chunks=(1024, 3))

    path = _edited(write_foreign_cxi(tmp_path / "bomb.cxi", foreign_scan), bomb)
    with pytest.raises(FormatError, match="100000000000 translations for"):
        read_cxi(path)


def test_a_data_set_that_links_to_itself_is_refused(foreign_scan, tmp_path):
    def loop(f):
        del f["entry_1/data_1/data"]
        f["entry_1/data_1/data"] = h5py.SoftLink("/entry_1/data_1/data")

    path = _edited(write_foreign_cxi(tmp_path / "loop.cxi", foreign_scan), loop)
    with pytest.raises(FormatError, match="at /entry_1/data_1/data: the link cannot be followed"):
        read_cxi(path)


def test_intensities_beyond_float32_are_not_written(small_dataset, tmp_path, monkeypatch, capsys):
    """An NPZ of 1e30 amplitudes (with a probe in the same units) would give infinite CXI
    intensities: refused, nothing written (issue 27, item 4)."""
    from ptypinn.io.artifacts import write_npz

    arrays = small_dataset.to_arrays()
    arrays["diffraction"] = (arrays["diffraction"] * 1e30).astype(np.float32)
    arrays["probeGuess"] = (arrays["probeGuess"] * 1e30).astype(np.complex64)
    write_npz(tmp_path / "huge.npz", arrays)
    code, out = run_main(
        monkeypatch, capsys, "convert", str(tmp_path / "huge.npz"), str(tmp_path / "out.cxi")
    )
    assert code == 2 and "beyond float32" in out.err and "Traceback" not in out.err
    assert not (tmp_path / "out.cxi").exists()
