"""Neighbour groups: which ``C = gridsize**2`` scan positions a gridsize > 1 sample combines.

A position's *neighbourhood* is the position itself followed by its ``K - 1`` nearest other
positions (``K = neighbor_count``, nearest first; found with a KD-tree). Two ways to build groups:

* one group per position (:func:`make_groups` with ``n_groups`` up to the number of positions):
  the seed position first, then ``C - 1`` members drawn without replacement from the other
  ``K - 1`` members of its neighbourhood;
* K-choose-C oversampling (``n_groups`` larger than the number of positions): the pool
  (:func:`candidate_groups`) holds every ``C``-combination of every neighbourhood,
  ``n * comb(K, C)`` groups, and ``n_groups`` of them are drawn without replacement. Two
  neighbourhoods can share a combination, so the pool may hold the same member set twice.

All randomness comes from ``numpy.random.default_rng(seed)``: the same inputs give the same
groups. When there are fewer positions than ``K`` (but at least ``C``), ``K`` is reduced to
the number of positions.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
from scipy.spatial import cKDTree


class GroupingError(ValueError):
    """Groups that cannot be formed from the given positions and parameters."""


def _check_positions(positions: np.ndarray) -> np.ndarray:
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 2:
        raise GroupingError(
            f"positions must be an (n, 2) array of (x, y), got shape {positions.shape}"
        )
    if not np.all(np.isfinite(positions)):
        raise GroupingError("positions contain NaN or infinite values")
    return positions


def neighbours_problem(gridsize: int, neighbor_count: int) -> str | None:
    """Why groups of ``C = gridsize**2`` cannot be drawn from ``K = neighbor_count`` nearest
    neighbours (``None``: they can): the one K >= C check."""
    group = gridsize**2
    if neighbor_count < group:
        return (
            f"neighbour count K={neighbor_count} is smaller than C=gridsize^2={group}; "
            "groups need K >= C"
        )
    return None


def _group_size(positions: np.ndarray, gridsize: int, neighbor_count: int) -> tuple[int, int]:
    """Validated ``(C, K)``, with ``K`` reduced to the number of positions where it exceeds it."""
    if int(gridsize) != gridsize or gridsize < 1:
        raise GroupingError(f"gridsize must be an integer >= 1, got {gridsize}")
    if int(neighbor_count) != neighbor_count or neighbor_count < 1:
        raise GroupingError(f"neighbor_count must be an integer >= 1, got {neighbor_count}")
    group, count = int(gridsize) ** 2, positions.shape[0]
    problem = neighbours_problem(int(gridsize), int(neighbor_count))
    if problem:
        raise GroupingError(problem)
    if count < group:
        raise GroupingError(
            f"only {count} positions, fewer than the C=gridsize^2={group} a group needs"
        )
    return group, min(int(neighbor_count), count)


def _neighbourhoods(positions: np.ndarray, neighbor_count: int, seeds: np.ndarray) -> np.ndarray:
    """(len(seeds), K) indices: each seed first, then its K - 1 nearest other positions."""
    seeds = np.asarray(seeds, dtype=np.int64)
    _, nearest = cKDTree(positions).query(positions[seeds], k=neighbor_count)
    nearest = np.asarray(nearest, dtype=np.int64).reshape(seeds.shape[0], neighbor_count)
    is_self = nearest == seeds[:, None]
    # The query usually returns the seed first, but coincident positions may displace it (or push it
    # out of the K returned): move it to the front, or keep the K - 1 nearest others without it.
    self_first = np.take_along_axis(nearest, np.argsort(~is_self, axis=1, kind="stable"), axis=1)
    others = np.where(is_self.any(axis=1)[:, None], self_first[:, 1:], nearest[:, :-1])
    return np.concatenate((seeds[:, None], others), axis=1)


def _combination_table(neighbor_count: int, group: int) -> np.ndarray:
    """(comb(K, C), C) column indices of every C-combination of K, in lexicographic order."""
    return np.array(list(combinations(range(neighbor_count), group)), dtype=np.int64).reshape(
        -1, group
    )


def candidate_groups(positions: np.ndarray, gridsize: int, neighbor_count: int) -> np.ndarray:
    """The oversampling pool: every C-combination of every neighbourhood, (n * comb(K, C), C) int64.

    Rows come neighbourhood by neighbourhood (position 0 first), combinations in lexicographic
    order of neighbourhood rank, so a group's first member is its nearest-to-seed member.
    """
    positions = _check_positions(positions)
    group, neighbor_count = _group_size(positions, gridsize, neighbor_count)
    hoods = _neighbourhoods(positions, neighbor_count, np.arange(positions.shape[0]))
    return hoods[:, _combination_table(neighbor_count, group)].reshape(-1, group)


def make_groups(
    positions: np.ndarray,
    gridsize: int,
    neighbor_count: int = 7,
    n_groups: int | None = None,
    seed: int = 123,
) -> np.ndarray:
    """Groups of ``C = gridsize**2`` neighbouring position indices, (G, C) int64.

    * ``gridsize == 1``: every position is its own group, ``arange(n)[:, None]`` (a seeded random
      subset of ``n_groups`` positions when ``n_groups < n``; more than ``n`` is refused).
    * ``n_groups`` None or ``<= n``: one group per position (all positions in scan order, or
      ``n_groups`` of them in a seeded random order), the seed position first, then ``C - 1``
      members drawn from its neighbourhood.
    * ``n_groups > n``: ``n_groups`` drawn without replacement from :func:`candidate_groups`;
      asking for more than the pool holds is refused.
    """
    positions = _check_positions(positions)
    group, neighbor_count = _group_size(positions, gridsize, neighbor_count)
    count = positions.shape[0]
    if n_groups is not None and (int(n_groups) != n_groups or n_groups < 1):
        raise GroupingError(f"n_groups must be a positive integer, got {n_groups}")
    rng = np.random.default_rng(seed)
    if n_groups is None or n_groups == count:
        seeds = np.arange(count, dtype=np.int64)
    elif n_groups < count:
        seeds = rng.permutation(count)[: int(n_groups)].astype(np.int64)
    elif group == 1:
        raise GroupingError(
            "gridsize 1 groups are single positions: "
            f"at most {count} groups from {count} positions, asked for {n_groups}"
        )
    else:
        pool_size = count * math.comb(neighbor_count, group)
        if n_groups > pool_size:
            raise GroupingError(
                f"asked for {n_groups} groups but K-choose-C oversampling of {count} positions "
                f"(K={neighbor_count}, C={group}) offers only "
                f"{pool_size} = {count} x comb({neighbor_count}, {group})"
            )
        # Draw pool rows by index: row r is combination r % comb(K, C) of neighbourhood
        # r // comb(K, C), exactly the row order of candidate_groups, without holding the whole
        # pool in memory.
        table = _combination_table(neighbor_count, group)
        chosen = rng.choice(pool_size, size=int(n_groups), replace=False)
        hoods = _neighbourhoods(positions, neighbor_count, np.arange(count))
        rows, combo = np.divmod(chosen, table.shape[0])
        return np.take_along_axis(hoods[rows], table[combo], axis=1)
    if group == 1:
        return seeds[:, None]
    hoods = _neighbourhoods(positions, neighbor_count, seeds)
    picks = np.argsort(rng.random((seeds.shape[0], neighbor_count - 1)), axis=1)[:, : group - 1]
    members = np.take_along_axis(hoods[:, 1:], picks, axis=1)
    return np.concatenate((seeds[:, None], members), axis=1)


def group_coordinates(positions: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (G, 2) and member offsets from the centroid (G, C, 2), both as (x, y)."""
    positions = _check_positions(positions)
    groups = np.asarray(groups)
    if groups.ndim != 2 or not np.issubdtype(groups.dtype, np.integer):
        raise GroupingError(
            f"groups must be a (G, C) integer array, got {groups.dtype} {groups.shape}"
        )
    if groups.size and (groups.min() < 0 or groups.max() >= positions.shape[0]):
        raise GroupingError(
            f"group indices must lie in [0, {positions.shape[0]}), "
            f"got [{groups.min()}, {groups.max()}]"
        )
    members = positions[groups]
    centroids = members.mean(axis=1)
    return centroids, members - centroids[:, None, :]
