import json
import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist

from ptypinn.physics.forward import raster_scan
from ptypinn.physics.probes import gaussian_probe
from ptypinn.physics.scan import (
    disc_overlap_distance,
    disc_overlap_fraction,
    measure_overlap,
    probe_footprint,
    select_min_spacing,
)


def top_hat(size, radius):
    yy, xx = np.mgrid[:size, :size] - size // 2
    return (np.hypot(xx, yy) <= radius).astype(np.complex64)


# --------------------------------------------------------------------------------------------
# Disc overlap and its inverse


def test_disc_overlap_fraction_at_known_distances():
    diameter = 40.0
    radius = diameter / 2
    # Two discs a radius apart: the lens is two circular segments whose chord lies R/2 from each
    # centre.
    h = radius / 2
    segment = radius**2 * math.acos(h / radius) - h * math.sqrt(radius**2 - h**2)
    expected = 2 * segment / (math.pi * radius**2)
    values = disc_overlap_fraction(np.array([0.0, radius, diameter, 1.5 * diameter]), diameter)
    np.testing.assert_allclose(values, [1.0, expected, 0.0, 0.0], atol=1e-12)
    assert expected == pytest.approx(0.391, abs=5e-4)
    assert np.all(np.diff(disc_overlap_fraction(np.linspace(0, diameter, 50), diameter)) < 0)


def test_disc_overlap_fraction_matches_counted_pixels():
    yy, xx = np.mgrid[-300:400, -300:300] + 0.5
    first, second = np.hypot(xx, yy) < 200, np.hypot(xx, yy - 130) < 200
    assert disc_overlap_fraction(130.0, 400.0) == pytest.approx(
        (first & second).sum() / first.sum(), abs=2e-3
    )


@pytest.mark.parametrize("diameter", [8.0, 32.96, 65.8, 500.0])
@pytest.mark.parametrize("target", [0.05, 0.2, 0.391, 0.5, 0.7, 0.95])
def test_inverting_the_disc_overlap_gives_back_the_target(diameter, target):
    distance = disc_overlap_distance(target, diameter)
    assert 0 < distance < diameter
    assert float(disc_overlap_fraction(distance, diameter)) == pytest.approx(target, abs=1e-9)


def test_disc_overlap_distance_scales_with_the_diameter_and_has_exact_ends():
    # f(R) = 2/3 - sqrt(3) / (2 pi) exactly (test above), so that fraction maps back to d = D/2.
    half = 2 / 3 - math.sqrt(3) / (2 * math.pi)
    assert disc_overlap_distance(half, 50.0) == pytest.approx(25.0, rel=1e-9)
    # The examples: f = 0.7 -> d ~ 0.24 D, f = 0.2 -> d ~ 0.69 D, for any D.
    for diameter in (10.0, 33.0, 128.0):
        assert disc_overlap_distance(0.7, diameter) / diameter == pytest.approx(0.2379, abs=1e-4)
        assert disc_overlap_distance(0.2, diameter) / diameter == pytest.approx(0.6870, abs=1e-4)
    assert disc_overlap_distance(1.0, 30.0) == 0.0 and disc_overlap_distance(0.0, 30.0) == 30.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        disc_overlap_distance(1.2, 30.0)
    with pytest.raises(ValueError, match="positive"):
        disc_overlap_distance(0.5, 0.0)


# --------------------------------------------------------------------------------------------
# Minimum-spacing selection


def test_selection_keeps_only_well_spaced_positions_and_is_maximal(rng):
    positions = rng.uniform(0, 300, size=(800, 2))
    kept = select_min_spacing(positions, 25.0, seed=456)
    assert np.all(np.diff(kept) > 0)
    assert pdist(positions[kept]).min() >= 25.0
    rejected = np.setdiff1d(np.arange(800), kept)
    # Greedy: every rejected position was blocked by a kept one.
    assert np.all(cdist(positions[rejected], positions[kept]).min(axis=1) < 25.0)
    assert select_min_spacing(positions, 25.0, seed=456).tobytes() == kept.tobytes()
    assert not np.array_equal(select_min_spacing(positions, 25.0, seed=457), kept)


def test_selection_spacing_is_inclusive_and_zero_keeps_all():
    grid = raster_scan((200, 200), 64, step=10.0)
    np.testing.assert_array_equal(select_min_spacing(grid, 10.0, seed=1), np.arange(len(grid)))
    np.testing.assert_array_equal(select_min_spacing(grid, 0.0, seed=1), np.arange(len(grid)))
    kept = select_min_spacing(grid, 10.5, seed=1)
    assert 0 < len(kept) < len(grid) and pdist(grid[kept]).min() >= 10.5


# --------------------------------------------------------------------------------------------
# Footprint, overlap and coverage


def test_probe_footprint_of_a_top_hat_and_a_gaussian():
    mask, diameter = probe_footprint(top_hat(64, 12))
    assert mask.sum() == np.count_nonzero(np.abs(top_hat(64, 12)))
    assert diameter == pytest.approx(24.0, abs=0.5)
    # Gaussian amplitude with FWHM w: intensity exp(-r^2 / sigma^2) drops to 1/e^2 at
    # r = sqrt(2) sigma.
    sigma = 10 / (2 * math.sqrt(2 * math.log(2)))
    assert probe_footprint(gaussian_probe(64, 10.0))[1] == pytest.approx(
        2 * math.sqrt(2) * sigma, abs=0.3
    )
    with pytest.raises(ValueError, match="zero everywhere"):
        probe_footprint(np.zeros((8, 8)))


def test_overlap_of_two_positions_is_the_disc_formula():
    probe = top_hat(64, 12)
    diameter = probe_footprint(probe)[1]
    result = measure_overlap(np.array([[50.0, 60.0], [60.0, 60.0]]), probe, (128, 128), 7)
    assert result["nearest_overlap"] == pytest.approx(float(disc_overlap_fraction(10.0, diameter)))
    assert result["knn_overlap"] == result["nearest_overlap"]
    assert result["mean_nn_spacing_px"] == pytest.approx(10.0)
    assert result["count"] == 2 and result["neighbor_count"] == 7
    assert result["probe_diameter_px"] == diameter
    json.dumps(result, allow_nan=False)


def test_nearest_and_knn_overlap_on_a_regular_raster():
    """5 x 5 square raster of step s: every position's nearest neighbour is s away. Its 4
    nearest are s, s, s, s inside (9 positions), s, s, s, s*sqrt(2) on an edge (12) and
    s, s, s*sqrt(2), 2s at a corner (4)."""
    probe = top_hat(64, 15)
    diameter = probe_footprint(probe)[1]
    step = 9.0
    grid = np.stack(np.meshgrid(np.arange(5) * step, np.arange(5) * step), -1).reshape(-1, 2)
    f1, f_diagonal, f2 = disc_overlap_fraction(step * np.array([1, math.sqrt(2), 2]), diameter)
    inside, edge, corner = f1, (3 * f1 + f_diagonal) / 4, (2 * f1 + f_diagonal + f2) / 4
    result = measure_overlap(grid, probe, None, 4)
    assert result["mean_nn_spacing_px"] == pytest.approx(step)
    assert result["nearest_overlap"] == pytest.approx(f1)
    assert result["knn_overlap"] == pytest.approx((9 * inside + 12 * edge + 4 * corner) / 25)


def test_coverage_of_known_layouts():
    probe = top_hat(64, 12)
    area = int(np.count_nonzero(np.abs(probe)))
    one = np.array([[64.0, 64.0]])
    # Default region: the footprint's own bounding box (25 x 25 px).
    assert measure_overlap(one, probe, (128, 128), 7)["coverage"] == pytest.approx(area / 25**2)
    box = (32, 96, 32, 96)
    assert measure_overlap(one, probe, (128, 128), 7, field_of_view=box)[
        "coverage"
    ] == pytest.approx(area / 64**2)
    apart = np.array([[45.0, 64.0], [83.0, 64.0]])
    assert measure_overlap(apart, probe, (128, 128), 7, field_of_view=box)[
        "coverage"
    ] == pytest.approx(2 * area / 64**2)
    same = np.array([[64.0, 64.0], [64.2, 63.9]])
    assert measure_overlap(same, probe, (128, 128), 7, field_of_view=box)[
        "coverage"
    ] == pytest.approx(area / 64**2)
    # At x = 0 only the footprint's right half (mask columns >= 32) lies on the object, and the
    # region is clipped to the object's columns 0..12 of the footprint's 25-row box.
    edge = measure_overlap(np.array([[0.0, 64.0]]), probe, (128, 128), 7)
    assert edge["coverage"] == pytest.approx(np.count_nonzero(np.abs(probe)[:, 32:]) / (25 * 13))
    single = measure_overlap(one, probe, (128, 128), 7)
    assert single["knn_overlap"] is None and single["mean_nn_spacing_px"] is None
