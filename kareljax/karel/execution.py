"""What the JAX interpreter returns, and the per-world inputs its runners share."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class ActionTrace(NamedTuple):
    """State after each executed action, entry 0 the initial state; [..., K] arrays.

    Compact dtypes: int8 row, column and facing, markers_here in the markers' dtype, int16 stmt.
    """

    row: jax.Array
    col: jax.Array
    facing: jax.Array
    markers_here: jax.Array  # marker count of the hero's cell
    stmt: jax.Array          # pre-order statement index of the action (-1 for entry 0)
    valid: jax.Array         # bool: the entry exists (index <= num_actions)


class CondTrace(NamedTuple):
    """Each condition evaluation in order; [..., Kc] arrays."""

    value: jax.Array
    stmt: jax.Array
    valid: jax.Array


class Execution(NamedTuple):
    """Final states and (optionally) traces, each [P, E, S, ...]."""

    row: jax.Array
    col: jax.Array
    facing: jax.Array
    markers: jax.Array      # [..., H, W] in the smallest integer dtype that holds every count
    timeout: jax.Array      # bool: the step budget ran out before the program ended
    steps: jax.Array        # steps used (actions, condition tests, repeat iterations)
    num_actions: jax.Array  # actions executed (traces keep the first K - 1 of them)
    num_conds: jax.Array
    trace: ActionTrace | None
    cond_trace: CondTrace | None

class Element(NamedTuple):
    """What one world's run needs, gathered once per chunk."""

    program: jax.Array   # index of its program
    remap: jax.Array     # int32 [5]
    walls: jax.Array     # uint32 [words]
    markers: jax.Array   # [H * W]
    cell: jax.Array
    facing: jax.Array


def trace_entry(cell, facing, here, stmt, width):
    """A trace entry in compact dtypes: int8 row, column and facing; the markers' dtype; int16
    statement index (programs have fewer than bytecode.MAX_INSTRUCTIONS = 2**15 statements)."""
    return ((cell // width).astype(jnp.int8), (cell % width).astype(jnp.int8),
            facing.astype(jnp.int8), here, jnp.asarray(stmt).astype(jnp.int16))
