"""The fast path for straight-line programs: a scan over action columns, no program counter.

Every world of a chunk executes its k-th action at scan step k, so the instruction fetch of the
bytecode path disappears and the trace is simply the scan's stacked outputs.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from kareljax.karel import world_ops
from kareljax.karel.execution import ActionTrace, Element, trace_entry


def run_straight(el: Element, columns, max_steps, width: int, trace_len: int):
    """Runs a chunk of straight-line programs: `columns` int32 [A, C], the k-th action of each of
    the chunk's C worlds in row k (-1 padding)."""
    num_cols = columns.shape[0]
    present = columns >= 0
    enabled = present & (jnp.arange(num_cols)[:, None] < max_steps)
    primitives = jnp.take_along_axis(el.remap.T, jnp.maximum(columns, 0), axis=0)
    here0 = jax.vmap(lambda m, c: m[c])(el.markers, el.cell)
    step = jax.vmap(functools.partial(world_ops.apply_action, width=width))

    def body(carry, xs):
        cell, facing, markers, here = carry
        prim, on = xs
        cell, facing, markers, here = step(prim, cell, facing, markers, here, el.walls, enabled=on)
        return (cell, facing, markers, here), ((cell, facing, here) if trace_len else None)

    (cell, facing, markers, _), ys = lax.scan(
        body, (el.cell, el.facing, el.markers, here0), (primitives, enabled))
    num_actions = enabled.sum(axis=0).astype(jnp.int32)
    timeout = jnp.any(present & ~enabled, axis=0)
    trace = None
    if trace_len:
        cells = jnp.concatenate([el.cell[None], ys[0]]).T
        facings = jnp.concatenate([el.facing[None], ys[1]]).T
        heres = jnp.concatenate([here0[None], ys[2]]).T
        stmts = jnp.broadcast_to(jnp.arange(-1, num_cols), cells.shape)
        fields = trace_entry(cells, facings, heres, stmts, width)
        fields = [_fit(f, trace_len) for f in fields]
        valid = jnp.arange(trace_len)[None] <= num_actions[:, None]
        trace = ActionTrace(*fields, valid=valid)
    return (cell, facing, markers, timeout, num_actions, num_actions, jnp.zeros_like(num_actions),
            trace, None)


def _fit(x, length: int):
    """Truncates or zero-pads the last axis to `length`."""
    if x.shape[-1] >= length:
        return x[..., :length]
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, length - x.shape[-1])])
