"""Random worlds for tests: `random_worlds` under one jit per shape (eager dispatch is slow)."""
from __future__ import annotations

import jax
import numpy as np

from kareljax.data.worlds import random_worlds
from kareljax.karel.world import World

# The batch shape most tests use ([programs, worlds per program]) and the world sizes (border
# included) they cover; sharing them keeps the number of compilations down.
SHAPE = (6, 4)
SIZES = ((8, 8), (5, 5), (6, 7))

_jitted = jax.jit(random_worlds, static_argnums=(1, 2, 3))


def make_worlds(seed: int, shape: tuple[int, ...], height: int = 8, width: int = 8) -> World:
    """Random worlds as numpy arrays (leading axes `shape`)."""
    w = _jitted(jax.random.key(seed), tuple(shape), height, width)
    return World(*(np.asarray(x) for x in (w.walls, w.markers, w.row, w.col, w.facing)))


def world_at(batch: World, *index) -> World:
    """One world of a batch, as writable numpy arrays."""
    return World(*(np.array(np.asarray(x)[index]) for x in
                   (batch.walls, batch.markers, batch.row, batch.col, batch.facing)))


