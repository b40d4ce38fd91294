"""Random worlds match the original generator's statistics (docs/spec.md §1) over 20,000 worlds."""
import jax
import numpy as np
import pytest

from kareljax.data.worlds import random_worlds
from kareljax.karel.world import DELTAS

N = 20_000


@pytest.fixture(scope="module")
def worlds():
    w = random_worlds(jax.random.key(123), (N,))
    return jax.tree.map(np.asarray, w)


def test_interior_walls_and_markers(worlds):
    interior = (slice(None), slice(1, -1), slice(1, -1))
    walls = worlds.walls[interior].sum(axis=(1, 2))
    markers = worlds.markers[interior].sum(axis=(1, 2))
    # The original's observed means: 3.52 walls and 3.14 markers (standard errors here ~0.013).
    assert abs(walls.mean() - 3.52) < 0.06
    assert abs(markers.mean() - 3.14) < 0.06
    assert worlds.markers.max() == 1
    assert not (worlds.markers.astype(bool) & worlds.walls).any()


def test_border_is_walls(worlds):
    w = worlds.walls
    assert w[:, 0].all() and w[:, -1].all() and w[:, :, 0].all() and w[:, :, -1].all()


def test_hero_never_on_wall_or_marker(worlds):
    i = np.arange(N)
    assert not worlds.walls[i, worlds.row, worlds.col].any()
    assert not worlds.markers[i, worlds.row, worlds.col].any()
    assert ((1 <= worlds.row) & (worlds.row <= 6) & (1 <= worlds.col) & (worlds.col <= 6)).all()


def test_front_blocked_about_a_quarter(worlds):
    i = np.arange(N)
    dr, dc = DELTAS[worlds.facing].T
    blocked = worlds.walls[i, worlds.row + dr, worlds.col + dc]
    assert abs(blocked.mean() - 0.25) < 0.015


def test_facing_and_position_uniform(worlds):
    counts = np.bincount(worlds.facing, minlength=4)
    chi2 = ((counts - N / 4) ** 2 / (N / 4)).sum()
    assert chi2 < 16.27  # chi-square, 3 degrees of freedom, p = 0.001
    cells = np.bincount((worlds.row - 1) * 6 + worlds.col - 1, minlength=36)
    chi2 = ((cells - N / 36) ** 2 / (N / 36)).sum()
    assert chi2 < 66.6  # 35 degrees of freedom, p = 0.001


def test_seeded_and_sized():
    a = random_worlds(jax.random.key(5), (3, 2), 6, 7)
    b = random_worlds(jax.random.key(5), (3, 2), 6, 7)
    c = random_worlds(jax.random.key(6), (3, 2), 6, 7)
    assert a.walls.shape == (3, 2, 6, 7)
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert not np.array_equal(a.walls, c.walls)
