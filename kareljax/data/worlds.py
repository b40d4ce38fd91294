"""Random Karel worlds (docs/spec.md §1), generated on device from an explicit PRNG key."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from kareljax.karel.world import World

WALL_PROB = 0.1
MARKER_PROB = 0.1


def _threshold16(p: float) -> int:
    """The 16-bit threshold t with P(uniform 16-bit value < t) = p (to 1 part in 65536)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability must be in [0, 1], got {p}")
    return round(p * 65536)


def random_worlds(key: jax.Array, shape: tuple[int, ...], height: int = 8, width: int = 8,
                  wall_prob: float = WALL_PROB, marker_prob: float = MARKER_PROB) -> World:
    """A batch of worlds with leading axes `shape`, border included in height x width.

    Each cell is a wall with probability `wall_prob`, then the border is forced to walls; the hero
    stands uniformly in the interior facing a uniform direction, on a cell forced empty; every other
    interior non-wall cell gets one marker with probability `marker_prob`.
    """
    if height < 3 or width < 3:
        raise ValueError(f"a world needs an interior: got {height}x{width} with its border")
    k_cells, k_row, k_col, k_facing = jax.random.split(key, 4)
    rows = jnp.arange(height)[:, None]
    cols = jnp.arange(width)[None, :]
    border = (rows == 0) | (rows == height - 1) | (cols == 0) | (cols == width - 1)
    row = jax.random.randint(k_row, shape, 1, height - 1)
    col = jax.random.randint(k_col, shape, 1, width - 1)
    facing = jax.random.randint(k_facing, shape, 0, 4)
    hero = (rows == row[..., None, None]) & (cols == col[..., None, None])
    # One 32-bit draw per cell: the low half decides the wall, the high half the marker.
    bits = jax.random.bits(k_cells, shape + (height, width), jnp.uint32)
    walls = ((bits & 0xFFFF) < _threshold16(wall_prob)) | border
    walls = walls & ~hero
    markers = ((bits >> 16) < _threshold16(marker_prob)) & ~walls & ~hero
    return World(walls, markers.astype(jnp.uint8), row.astype(jnp.int32), col.astype(jnp.int32),
                 facing.astype(jnp.int32))
