import dataclasses

import numpy as np
import pytest
import torch
from cdtools.tools.interactions import translations_to_pixel
from cdtools.tools.propagators import far_field as cdtools_far_field

from ptypinn.engines.api import CDToolsOptions
from ptypinn.engines.cdtools import (
    CDToolsReconstructor,
    amplitude_to_intensity,
    cdtools_setup,
    min_translation,
    object_basis,
    positions_to_translations,
)
from ptypinn.engines.frame import ObjectFrame, from_engine_object
from ptypinn.physics.forward import far_field
from ptypinn.physics.geometry import Geometry, default_geometry

# ---------------------------------------------------------------------------- conventions


def test_cdtools_far_field_intensity_equals_our_amplitude_squared(rng):
    waves = torch.from_numpy(
        (rng.normal(size=(3, 16, 16)) + 1j * rng.normal(size=(3, 16, 16))).astype(np.complex64)
    )
    ours = amplitude_to_intensity(far_field(waves).numpy())
    theirs = cdtools_far_field(waves).abs().square().numpy()
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-6)
    # Parseval: both are orthonormal, so the intensity sums to the exit-wave energy
    np.testing.assert_allclose(
        ours.sum(axis=(1, 2)), waves.abs().square().sum(dim=(1, 2)).numpy(), rtol=1e-5
    )


@pytest.mark.parametrize("size", [32, 64, 128])
def test_geometry_gives_cdtools_the_object_pixel_along_rows_y_and_columns_x(size):
    square = default_geometry(size)
    oblong = Geometry(8000.0, 1.5, (20e-9, 30e-9), (0.0, 0.0), "test")
    for geometry in (square, oblong):
        pixel_x, pixel_y = geometry.object_pixel_size_m
        expected = np.array([[0, pixel_x], [pixel_y, 0], [0, 0]])
        np.testing.assert_allclose(
            object_basis(geometry, size).numpy(), expected, rtol=1e-5, atol=1e-20
        )


def test_positions_become_window_corners_in_the_engine_object(rng):
    size, shape = 32, (100, 120)
    positions = np.stack(
        (rng.uniform(-3, 125, 50), rng.uniform(-3, 105, 50)), axis=1
    )  # some windows leave the object
    frame = ObjectFrame.around(positions, size, shape)
    geometry = Geometry(8000.0, 1.5, (20e-9, 30e-9), (0.0, 0.0), "test")
    translations = torch.from_numpy(positions_to_translations(positions, geometry))
    pixels = translations_to_pixel(object_basis(geometry, size), translations) - torch.from_numpy(
        min_translation(frame, size)
    )
    top, bottom, left, right = frame.pad
    expected = np.stack(
        (positions[:, 1] - size // 2 + top, positions[:, 0] - size // 2 + left), axis=1
    )
    np.testing.assert_allclose(pixels.numpy(), expected, atol=2e-3)
    corners = np.floor(pixels.numpy())
    height, width = frame.engine_shape
    assert (
        corners.min() >= 0
        and corners[:, 0].max() + size <= height
        and corners[:, 1].max() + size <= width
    )


def test_cdtools_model_of_the_truth_reproduces_our_data_and_returns_our_probe_and_object(
    simulated_input,
):
    inp, obj = simulated_input(step=8.0)  # integer positions: both models sample the same pixels
    setup = cdtools_setup(dataclasses.replace(inp, initial_object=obj))
    indices = torch.arange(len(inp.positions_px))
    (_, translations), patterns = setup.dataset[:]
    with torch.no_grad():
        simulated = setup.model.forward(indices, translations).numpy()
    np.testing.assert_allclose(patterns.numpy(), amplitude_to_intensity(inp.diffraction))
    np.testing.assert_allclose(
        simulated, patterns.numpy(), rtol=1e-3, atol=1e-5 * patterns.numpy().max()
    )
    np.testing.assert_allclose(setup.model.physical_probe(), inp.probe, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(from_engine_object(setup.model.obj, setup.frame), obj)


def test_subpixel_positions_reproduce_our_bilinear_data_and_keep_sign_and_axis_order(
    simulated_input,
):
    inp, obj = simulated_input(step=8.0, jitter=1.5)

    def misfit(positions):
        setup = cdtools_setup(dataclasses.replace(inp, positions_px=positions, initial_object=obj))
        (_, translations), _ = setup.dataset[:]
        with torch.no_grad():
            amplitude = (
                setup.model.forward(torch.arange(len(translations)), translations).sqrt().numpy()
            )
        return np.linalg.norm(amplitude - inp.diffraction) / np.linalg.norm(inp.diffraction)

    whole = np.round(inp.positions_px)
    fraction = inp.positions_px - whole
    assert (
        misfit(inp.positions_px) < 1e-4
    )  # same bilinear object sampling as physics.extract_patches
    assert min(misfit(whole), misfit(whole - fraction), misfit(whole + fraction[:, ::-1])) > 0.03


# ---------------------------------------------------------------------------- reconstruction


def test_same_seed_same_reconstruction_and_refined_probe_moves(simulated_input):
    inp, _ = simulated_input(step=12.0)
    first, second = (
        CDToolsReconstructor(CDToolsOptions(iterations=2, seed=3)).reconstruct(inp)
        for _ in range(2)
    )
    np.testing.assert_array_equal(first.obj, second.obj)
    refined = CDToolsReconstructor(
        CDToolsOptions(iterations=2, seed=3, refine_probe=True)
    ).reconstruct(inp)
    assert refined.metadata["probe_refined"] and not np.array_equal(refined.probe, inp.probe)
