import math
from collections import Counter
from itertools import combinations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from ptypinn.physics.grouping import GroupingError, candidate_groups, group_coordinates, make_groups


def nearest_sets(positions, k):
    """Brute force: each position's k nearest positions, itself included."""
    order = np.argsort(cdist(positions, positions), axis=1)
    return [set(row[:k].tolist()) for row in order]


@pytest.fixture
def positions(rng):
    return rng.uniform(0, 200, size=(150, 2))


def test_gridsize_one_groups_each_position_alone(positions):
    groups = make_groups(positions, gridsize=1)
    assert groups.dtype == np.int64
    np.testing.assert_array_equal(groups, np.arange(150)[:, None])


def test_groups_hold_the_seed_and_true_nearest_neighbours(positions):
    groups = make_groups(positions, gridsize=2, neighbor_count=7)
    assert groups.shape == (150, 4) and groups.dtype == np.int64
    np.testing.assert_array_equal(groups[:, 0], np.arange(150))
    hoods = nearest_sets(positions, 7)
    for row in groups:
        assert len(set(row.tolist())) == 4
        assert set(row.tolist()) <= hoods[row[0]]


def test_fewer_groups_than_positions_use_distinct_seeds_in_seeded_order(positions):
    groups = make_groups(positions, gridsize=2, n_groups=40, seed=5)
    assert groups.shape == (40, 4)
    assert len(set(groups[:, 0].tolist())) == 40
    assert not np.array_equal(groups[:, 0], np.sort(groups[:, 0]))
    hoods = nearest_sets(positions, 7)
    assert all(set(row.tolist()) <= hoods[row[0]] for row in groups)
    assert not np.array_equal(groups, make_groups(positions, gridsize=2, n_groups=40, seed=6))


def test_groups_are_reproducible(positions):
    first = make_groups(positions, gridsize=2, n_groups=400, seed=9)
    second = make_groups(positions.copy(), gridsize=2, n_groups=400, seed=9)
    assert first.tobytes() == second.tobytes()
    assert make_groups(positions, 2).tobytes() == make_groups(positions, 2).tobytes()


def test_oversampling_pool_is_every_combination_of_every_neighbourhood(positions):
    pool = candidate_groups(positions, gridsize=2, neighbor_count=7)
    assert pool.shape == (150 * math.comb(7, 4), 4)
    hoods = nearest_sets(positions, 7)
    for seed in (0, 77, 149):
        block = pool[seed * 35 : (seed + 1) * 35]
        expected = {frozenset(c) for c in combinations(sorted(hoods[seed]), 4)}
        assert {frozenset(row.tolist()) for row in block} == expected


def test_oversampled_groups_are_drawn_from_the_pool_without_replacement(positions):
    pool = Counter(map(tuple, candidate_groups(positions, 2, 7).tolist()))
    groups = make_groups(positions, gridsize=2, neighbor_count=7, n_groups=300)
    assert groups.shape == (300, 4)
    drawn = Counter(map(tuple, groups.tolist()))
    assert all(count <= pool[row] for row, count in drawn.items())
    # Every member set must come from one neighbourhood.
    hoods = nearest_sets(positions, 7)
    assert all(any(set(row) <= hood for hood in hoods) for row in drawn)
    everything = make_groups(positions, gridsize=2, neighbor_count=7, n_groups=sum(pool.values()))
    assert Counter(map(tuple, everything.tolist())) == pool


def test_fewer_positions_than_k_use_all_of_them():
    positions = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.5], [2.0, 2.0], [5.0, 1.0]])
    assert candidate_groups(positions, 2, 7).shape == (5 * math.comb(5, 4), 4)
    groups = make_groups(positions, 2, 7)
    assert groups.shape == (5, 4)
    assert all(len(set(row)) == 4 for row in groups.tolist())


def test_coincident_positions_keep_the_seed_first_and_members_distinct():
    positions = np.zeros((10, 2))
    positions[5:] = 3.0
    groups = make_groups(positions, 2, 7)
    np.testing.assert_array_equal(groups[:, 0], np.arange(10))
    assert all(len(set(row)) == 4 for row in groups.tolist())


def test_refusals_name_the_problem(positions):
    with pytest.raises(GroupingError, match=r"K=7 is smaller than C=gridsize\^2=9"):
        make_groups(positions, gridsize=3, neighbor_count=7)
    with pytest.raises(GroupingError, match=r"only 3 positions, fewer than the C=gridsize\^2=4"):
        make_groups(positions[:3], gridsize=2)
    with pytest.raises(
        GroupingError, match=r"asked for 5251 groups .* offers only 5250 = 150 x comb\(7, 4\)"
    ):
        make_groups(positions, gridsize=2, n_groups=150 * 35 + 1)
    with pytest.raises(GroupingError, match="at most 150 groups"):
        make_groups(positions, gridsize=1, n_groups=151)
    with pytest.raises(GroupingError, match="positions must be an"):
        make_groups(positions[:, 0], gridsize=2)


def test_group_coordinates_are_centroid_and_offsets():
    positions = np.array([[10.0, 100.0], [14.0, 100.0], [10.0, 106.0], [14.0, 106.0], [50.0, 0.0]])
    centroids, offsets = group_coordinates(positions, np.array([[0, 1, 2, 3], [4, 0, 1, 2]]))
    np.testing.assert_allclose(centroids[0], [12.0, 103.0])
    np.testing.assert_allclose(offsets[0], [[-2, -3], [2, -3], [-2, 3], [2, 3]])
    np.testing.assert_allclose(centroids[1], [21.0, 76.5])
    np.testing.assert_allclose(offsets.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(
        centroids[:, None, :] + offsets, positions[[[0, 1, 2, 3], [4, 0, 1, 2]]]
    )
    with pytest.raises(GroupingError, match="group indices"):
        group_coordinates(positions, np.array([[0, 5]]))
