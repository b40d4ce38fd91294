"""The JAX Karel interpreter: every (program, world, semantics) triple of a batch run on device.

`execute` shards the programs (with their worlds) over the local devices (a 1-D mesh, `shard_map`).
On each device a chunk of programs is flattened into (program, world, semantics) elements and run by
a branch-free step vmapped over them:

* straight-line batches (every program only actions) take the fast path of `straight_runner.py`, a
  scan over action columns, chunk after chunk so each chunk's worlds stay in cache;
* other batches run bytecode (`bytecode_runner.py`) in rounds of capped `while_loop`s until every
  world halts or runs out of steps.

Results are device arrays shaped [P, E, S, ...] for P programs, E worlds per program and S semantics
rows (remap tables); they stay sharded like the programs.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from kareljax.karel import bytecode as bc
from kareljax.karel import world_ops
from kareljax.karel.bytecode_runner import run_bytecode
from kareljax.karel.execution import ActionTrace, CondTrace, Element, Execution
from kareljax.karel.reference import DEFAULT_MAX_STEPS
from kareljax.karel.semantics import semantics_table
from kareljax.karel.straight_runner import run_straight
from kareljax.karel.world import World

__all__ = ["execute", "shard_by_program", "Execution", "ActionTrace", "CondTrace", "DEFAULT_CHUNK"]

# Elements (program x world x semantics) a device runs together: measured best on a 2-core CPU
# (benchmarks/interpreter.py); a chunk's worlds should stay in cache.
DEFAULT_CHUNK = {"straight": 4096, "bytecode": 2048}
_AXIS = "batch"


def _spread(wall_words, markers, cell, facing, remaps) -> Element:
    """The elements of Cp programs x E worlds x S semantics, flattened to [Cp * E * S]."""
    num_prog, num_worlds = cell.shape
    lead = (num_prog, num_worlds, remaps.shape[0])
    size = int(np.prod(lead))

    def per_world(x):  # [Cp, E, ...] -> [Cp * E * S, ...]
        x = x[:, :, None]
        return jnp.broadcast_to(x, lead + x.shape[3:]).reshape((size,) + x.shape[3:])

    return Element(
        program=jnp.arange(size, dtype=jnp.int32) // (num_worlds * remaps.shape[0]),
        remap=jnp.broadcast_to(remaps, lead + (5,)).reshape(size, 5),
        walls=per_world(wall_words), markers=per_world(markers), cell=per_world(cell),
        facing=per_world(facing))


def _device_worlds(walls, markers, row, col, facing, marker_dtype):
    """A device's worlds in the runners' form, computed once before any chunk: packed walls
    [P, E, words], flat markers [P, E, H * W], hero cell and facing [P, E]."""
    num_prog, num_worlds, _, width = walls.shape
    return (world_ops.pack_walls(walls),
            markers.reshape(num_prog, num_worlds, -1).astype(marker_dtype),
            (row * width + col).astype(jnp.int32), facing.astype(jnp.int32))


def _straight_device(actions, walls, markers, row, col, facing, *, remaps, max_steps,
                     marker_dtype, chunk, trace_len):
    """One device's straight-line programs, `chunk` elements at a time; results [P, E, S, ...]."""
    num_local, num_worlds, _, width = walls.shape
    lead = (num_worlds, remaps.shape[0])
    size = max(1, min(chunk // (num_worlds * remaps.shape[0]), num_local))
    local = (actions,) + _device_worlds(walls, markers, row, col, facing, marker_dtype)

    def chunk_at(start):
        acts, *world = (lax.dynamic_slice_in_dim(x, start, size) for x in local)
        el = _spread(*world, remaps)
        columns = jnp.broadcast_to(acts.T[:, :, None, None], acts.shape[1:] + (size,) + lead)
        out = run_straight(el, columns.reshape(acts.shape[1], -1), max_steps, width, trace_len)
        return jax.tree.map(lambda x: x.reshape((size,) + lead + x.shape[1:]), out)

    shapes = jax.eval_shape(chunk_at, 0)
    init = jax.tree.map(lambda s: jnp.zeros((num_local,) + s.shape[1:], s.dtype), shapes)

    def body(i, out):
        # The last chunk is shifted back to fit; the worlds it shares with the chunk before are
        # recomputed identically.
        start = jnp.minimum(i * size, num_local - size)
        return jax.tree.map(lambda o, n: lax.dynamic_update_slice_in_dim(o, n, start, 0),
                            out, chunk_at(start))

    return lax.fori_loop(0, -(-num_local // size), body, init)


def _bytecode_device(code, entry, walls, markers, row, col, facing, *, remaps, max_steps,
                     marker_dtype, chunk, num_slots, trace_len, cond_trace_len):
    """One device's bytecode programs; results [P, E, S, ...]."""
    el = _spread(*_device_worlds(walls, markers, row, col, facing, marker_dtype), remaps)
    out = run_bytecode(el, code, entry, max_steps, walls.shape[-1], num_slots, trace_len,
                       cond_trace_len, chunk)
    lead = walls.shape[:2] + remaps.shape[:1]
    return jax.tree.map(lambda x: x.reshape(lead + x.shape[1:]), out)


def _kernel(actions, code, entry, remaps, worlds: World, max_steps, *, mesh, chunk, marker_dtype,
            num_slots, trace_len, cond_trace_len):
    """Programs (and their worlds) sharded over `mesh`; results [P, E, S, ...]."""
    common = dict(remaps=remaps, max_steps=max_steps, marker_dtype=marker_dtype, chunk=chunk,
                  trace_len=trace_len)
    world_arrays = (worlds.walls, worlds.markers, worlds.row, worlds.col, worlds.facing)
    if actions is not None:
        device_part = functools.partial(_straight_device, **common)
        args = (actions,) + world_arrays
    else:
        device_part = functools.partial(_bytecode_device, num_slots=num_slots,
                                        cond_trace_len=cond_trace_len, **common)
        args = (code, entry) + world_arrays
    spec = PartitionSpec(_AXIS)
    out = jax.shard_map(device_part, mesh=mesh, in_specs=spec, out_specs=spec,
                        check_vma=False)(*args)
    cell, facing, markers, timeout, steps, num_actions, num_conds, trace, conds = out
    width = worlds.walls.shape[-1]
    return Execution(cell // width, cell % width, facing,
                     markers.reshape(markers.shape[:3] + worlds.walls.shape[-2:]),
                     timeout, steps, num_actions, num_conds, trace, conds)


KERNEL_STATIC_ARGS = ("mesh", "chunk", "marker_dtype", "num_slots", "trace_len",
                      "cond_trace_len")
# The one compiled entry point; tests wrap `_kernel` to count its traces.
_execute_kernel = jax.jit(_kernel, static_argnames=KERNEL_STATIC_ARGS)


@functools.lru_cache(maxsize=None)
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.array(devices), (_AXIS,))


def shard_by_program(tree, devices=None):
    """Places arrays with a leading program axis as `execute` splits them over `devices`.

    Passing worlds placed like this (with a program count divisible by the number of devices)
    saves `execute` from moving them between devices.
    """
    devices = tuple(jax.local_devices() if devices is None else devices)
    return jax.device_put(tree, NamedSharding(_mesh(devices), PartitionSpec(_AXIS)))


def execute(code: bc.Bytecode, worlds: World, remaps=None, *, max_steps: int = DEFAULT_MAX_STEPS,
            trace_len: int = 0, cond_trace_len: int = 0, chunk_size: int | None = None,
            max_markers: int | None = None, devices=None) -> Execution:
    """Runs every program on each of its worlds under every semantics row.

    Args:
      code: compiled programs (`bytecode.compile_batch`), P of them.
      worlds: a World whose fields have leading axes [P, E] (E worlds per program).
      remaps: int [S, 5] action maps (`semantics.semantics_table`); default: the original only.
      max_steps: the step budget (docs/spec.md §3).
      trace_len: action-trace entries to keep (K, entry 0 the initial state; 0 = no trace).
        Straight-line programs of A actions need A + 1.
      cond_trace_len: condition evaluations to keep (0 = none).
      chunk_size: about how many (program, world, semantics) runs a device does at once
        (default: DEFAULT_CHUNK for the batch's path).
      max_markers: an upper bound on the worlds' marker counts (random worlds: 1), which picks
        the marker dtype; default: read from the worlds (one pass over their markers). A count
        above the bound is an error the interpreter does not detect.
      devices: where to run (default: all local devices). P is padded to a multiple of their
        number if needed; pass a multiple to avoid the copy.

    Returns:
      An Execution of [P, E, S, ...] arrays.
    """
    remaps = jnp.asarray(semantics_table() if remaps is None else remaps, jnp.int32)
    if remaps.ndim != 2 or remaps.shape[1] != 5:
        raise ValueError(f"remaps must be [S, 5], got shape {remaps.shape}")
    if np.ndim(worlds.walls) != 4:
        raise ValueError(f"worlds need leading axes [programs, worlds]; walls have shape "
                         f"{np.shape(worlds.walls)}")
    num_prog, num_worlds, height, width = np.shape(worlds.walls)
    if not (3 <= min(height, width) and max(height, width) <= 127):
        raise ValueError(f"worlds must be 3 to 127 cells a side, border included; got {height}x{width}")
    if code.code.shape[0] != num_prog:
        raise ValueError(f"{code.code.shape[0]} programs but worlds for {num_prog}")
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    added = min(max_steps, code.actions.shape[1]) if code.straight else max_steps
    if max_markers is None:
        max_markers = int(jnp.max(worlds.markers))
    dtype = world_ops.marker_dtype(max_markers + added)
    devices = tuple(jax.local_devices() if devices is None else devices)
    pad = -num_prog % len(devices)
    program_arrays = (code.actions, None, None) if code.straight else (None, code.code, code.entry)
    if pad:
        program_arrays = [None if x is None else np.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
                          for x in program_arrays]
        worlds = jax.tree.map(lambda x: jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1),
                                                mode="edge"), worlds)
    # Each device receives its own programs straight from the host (no-op where already placed).
    program_arrays = shard_by_program(program_arrays, devices)
    out = _execute_kernel(
        *program_arrays, remaps, worlds, jnp.int32(max_steps), mesh=_mesh(devices),
        chunk=chunk_size or DEFAULT_CHUNK["straight" if code.straight else "bytecode"],
        marker_dtype=dtype,
        num_slots=code.num_slots, trace_len=trace_len, cond_trace_len=cond_trace_len)
    return jax.tree.map(lambda x: x[:num_prog], out) if pad else out
