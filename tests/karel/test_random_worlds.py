"""Random worlds (docs/spec.md §1): invariants of every world, and the original generator's statistics."""
from __future__ import annotations

import numpy as np
import pytest

from kareljax.karel.world import DELTAS
from tests.karel.worlds_util import SHAPE, SIZES, make_worlds


def _numpy(w):
    return [np.asarray(x) for x in (w.walls, w.markers, w.row, w.col, w.facing)]


def _worlds(seed, shape, height=8, width=8):
    return _numpy(make_worlds(seed, shape, height, width))


@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("seed", range(8))
def test_invariants(height, width, seed):
    walls, markers, row, col, facing = _worlds(seed, SHAPE, height, width)
    assert walls.shape == markers.shape == SHAPE + (height, width) and row.shape == SHAPE
    assert walls[..., [0, -1], :].all() and walls[..., :, [0, -1]].all()
    assert ((row >= 1) & (row <= height - 2) & (col >= 1) & (col <= width - 2)).all()
    assert ((facing >= 0) & (facing <= 3)).all()
    hero = (np.arange(height)[:, None] == row[..., None, None]) & \
           (np.arange(width)[None, :] == col[..., None, None])
    assert not (walls & hero).any() and not (markers * hero).any()
    assert set(np.unique(markers)) <= {0, 1} and not (markers * walls).any()


def test_same_key_same_worlds_and_different_keys_differ():
    a, b, c = (_worlds(k, SHAPE) for k in (1, 1, 2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_statistics_match_the_original_generator():
    """docs/spec.md §1: mean 3.52 interior walls, 3.14 markers, front blocked about 25 % of the time."""
    walls, markers, row, col, facing = _worlds(0, (20000,))
    interior = walls[:, 1:-1, 1:-1].sum(axis=(1, 2))
    front_r, front_c = row + DELTAS[facing, 0], col + DELTAS[facing, 1]
    blocked = walls[np.arange(len(row)), front_r, front_c]
    assert abs(interior.mean() - 3.52) < 0.1
    assert abs(markers.sum(axis=(1, 2)).mean() - 3.14) < 0.1
    assert abs(blocked.mean() - 0.25) < 0.02
