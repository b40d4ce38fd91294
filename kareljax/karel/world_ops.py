"""Branch-free Karel primitives on one world, for the JAX interpreter (vmapped by callers).

The grid is flattened: a cell is `row * width + col`. Walls never change, so they are packed into
uint32 words (bit i of word j = cell 32 * j + i); markers are a small unsigned/int vector.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from kareljax.karel import syntax


def num_wall_words(height: int, width: int) -> int:
    return -(-height * width // 32)


def pack_walls(walls: jnp.ndarray) -> jnp.ndarray:
    """bool [..., H, W] -> uint32 [..., num_wall_words]."""
    *lead, h, w = walls.shape
    words = num_wall_words(h, w)
    flat = walls.reshape(*lead, h * w)
    flat = jnp.pad(flat, [(0, 0)] * len(lead) + [(0, words * 32 - h * w)])
    bits = flat.reshape(*lead, words, 32).astype(jnp.uint32) << jnp.arange(32, dtype=jnp.uint32)
    return jnp.bitwise_or.reduce(bits, axis=-1)


def is_wall(wall_words: jnp.ndarray, cell: jnp.ndarray) -> jnp.ndarray:
    word_index = cell >> 5
    word = jnp.zeros((), jnp.uint32)
    for j in range(wall_words.shape[-1]):  # a handful of words: a select each, no gather
        word = jnp.where(word_index == j, wall_words[j], word)
    return ((word >> (cell & 31).astype(jnp.uint32)) & 1) == 1


def neighbour(cell: jnp.ndarray, facing: jnp.ndarray, width: int) -> jnp.ndarray:
    """The cell one step towards `facing` (taken mod 4); the border keeps it inside the grid."""
    facing = facing & 3
    step = jnp.where(facing == 0, -width, jnp.where(facing == 1, 1, jnp.where(facing == 2, width, -1)))
    return cell + step


def act_or_test(primitive, cond, is_test, cell, facing, markers, here, wall_words, width: int,
                enabled=True):
    """One instruction's effect on one world: the action `primitive`, or the test `cond`.

    `cond` is a condition id + 5 * negated (the bytecode encoding); `is_test` selects which of the
    two this is. Nothing changes where `enabled` is False. Both share one neighbour lookup: the
    cell in front for an action, the cell the condition looks at for a test. `here` is the marker
    count of the hero's cell, carried so a step gathers only after a move.

    Returns (cell, facing, markers, here, condition value).
    """
    kind, negated = cond % 5, cond >= 5
    side = jnp.where(kind == syntax.LEFT_IS_CLEAR, 3, jnp.where(kind == syntax.RIGHT_IS_CLEAR, 1, 0))
    looked_at = neighbour(cell, facing + jnp.where(is_test, side, 0), width)
    clear = ~is_wall(wall_words, looked_at)
    value = jnp.where(kind <= syntax.RIGHT_IS_CLEAR, clear,
                      jnp.where(kind == syntax.MARKERS_PRESENT, here > 0, here == 0)) != negated

    acts = enabled & ~is_test
    moves = acts & (primitive == syntax.MOVE) & clear
    turn = jnp.where(primitive == syntax.TURN_LEFT, 3, jnp.where(primitive == syntax.TURN_RIGHT, 1, 0))
    facing = (facing + jnp.where(acts, turn, 0)) & 3
    put = acts & (primitive == syntax.PUT_MARKER)
    pick = acts & (primitive == syntax.PICK_MARKER) & (here > 0)
    delta = put.astype(markers.dtype) - pick.astype(markers.dtype)
    markers = markers.at[cell].add(delta)
    new_here = jnp.where(moves, markers[looked_at], here + delta)
    return jnp.where(moves, looked_at, cell), facing, markers, new_here, value


def apply_action(primitive, cell, facing, markers, here, wall_words, width: int, enabled=True):
    """Executes one primitive (ids of syntax.ACTIONS); returns (cell, facing, markers, here)."""
    return act_or_test(primitive, 0, False, cell, facing, markers, here, wall_words, width,
                       enabled)[:4]


def marker_dtype(max_count: int):
    """The smallest integer dtype that holds every count a run can reach."""
    for dtype in (np.uint8, np.int16, np.int32):
        if max_count <= np.iinfo(dtype).max:
            return dtype
    raise ValueError(f"marker counts up to {max_count} do not fit in int32")
