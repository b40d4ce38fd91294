"""The JAX Karel interpreter: every (semantics, program, world) triple run on device at once.

`execute` shards the programs (with their worlds) over the local devices (a 1-D mesh, `shard_map`);
each device runs its programs in fixed-size chunks, one after another, so a chunk's worlds stay in
cache. A chunk flattens its (program, world, semantics) triples into one batch, and the per-world
step is branch-free and vmapped over it:

* straight-line batches (every program only actions) scan over action columns, no program counter;
* other batches run bytecode (`bytecode.py`) in a `while_loop` until every world halts or runs out of
  steps. Each loop iteration executes one instruction per world, masked where the world is done.

Results are device arrays shaped [P, E, S, ...] for P programs, E worlds per program and S semantics
rows (remap tables); they stay sharded like the programs.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from kareljax.karel import bytecode as bc
from kareljax.karel import world_ops
from kareljax.karel.reference import DEFAULT_MAX_STEPS
from kareljax.karel.semantics import semantics_table
from kareljax.karel.world import World

# Elements (program x world x semantics) a device runs together: measured best on a 2-core CPU
# (benchmarks/interpreter.py); a chunk's worlds should stay in cache.
DEFAULT_CHUNK = {"straight": 4096, "bytecode": 2048}
_AXIS = "batch"


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

    @property
    def world(self) -> World:
        """The final worlds (walls are not returned: they never change)."""
        return World(None, self.markers, self.row, self.col, self.facing)


class _Element(NamedTuple):
    """What one world's run needs, gathered once per chunk."""

    program: jax.Array   # index of its program
    remap: jax.Array     # int32 [5]
    walls: jax.Array     # uint32 [words]
    markers: jax.Array   # [H * W]
    cell: jax.Array
    facing: jax.Array


def _trace_entry(cell, facing, here, stmt, width):
    """A trace entry in compact dtypes: int8 row, column and facing; the markers' dtype; int16
    statement index (programs have fewer than bytecode.MAX_INSTRUCTIONS = 2**15 statements)."""
    return ((cell // width).astype(jnp.int8), (cell % width).astype(jnp.int8),
            facing.astype(jnp.int8), here, jnp.asarray(stmt).astype(jnp.int16))


# ----------------------------------------------------------------------------------- straight line
def _run_straight(el: _Element, actions, max_steps, width: int, trace_len: int):
    """Runs a chunk of straight-line programs: `actions` int32 [C, A] (-1 padding)."""
    num_cols = actions.shape[1]
    column = jnp.arange(num_cols)
    present = actions >= 0
    enabled = present & (column < max_steps)
    primitives = jnp.take_along_axis(el.remap, jnp.maximum(actions, 0), axis=1)
    here0 = jax.vmap(lambda m, c: m[c])(el.markers, el.cell)
    step = jax.vmap(functools.partial(world_ops.apply_action, width=width))

    def body(carry, xs):
        cell, facing, markers, here = carry
        prim, on = xs
        cell, facing, markers, here = step(prim, cell, facing, markers, here, el.walls, enabled=on)
        return (cell, facing, markers, here), ((cell, facing, here) if trace_len else None)

    (cell, facing, markers, _), ys = lax.scan(
        body, (el.cell, el.facing, el.markers, here0), (primitives.T, enabled.T))
    num_actions = enabled.sum(axis=1).astype(jnp.int32)
    timeout = jnp.any(present & ~enabled, axis=1)
    trace = None
    if trace_len:
        cells = jnp.concatenate([el.cell[None], ys[0]]).T
        facings = jnp.concatenate([el.facing[None], ys[1]]).T
        heres = jnp.concatenate([here0[None], ys[2]]).T
        stmts = jnp.broadcast_to(jnp.arange(-1, num_cols), cells.shape)
        fields = _trace_entry(cells, facings, heres, stmts, width)
        fields = [_fit(f, trace_len) for f in fields]
        valid = jnp.arange(trace_len)[None] <= num_actions[:, None]
        trace = ActionTrace(*fields, valid=valid)
    return cell, facing, markers, timeout, num_actions, num_actions, jnp.zeros_like(num_actions), trace, None


def _fit(x, length: int):
    """Truncates or zero-pads the last axis to `length`."""
    if x.shape[-1] >= length:
        return x[..., :length]
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, length - x.shape[-1])])


# ------------------------------------------------------------------------------------- bytecode
class _Machine(NamedTuple):
    cell: jax.Array
    facing: jax.Array
    markers: jax.Array
    here: jax.Array
    pc: jax.Array
    steps: jax.Array
    counters: jax.Array   # [slots]
    num_actions: jax.Array
    num_conds: jax.Array
    running: jax.Array
    trace: tuple          # 5 arrays [K]: row, col, facing, markers_here, stmt
    cond_trace: tuple     # 2 arrays [Kc]: value, stmt


class _PackedCode(NamedTuple):
    """Bytecode flattened to [P * L] and packed, so fetching an instruction is two 1-D gathers."""

    control: jax.Array  # op | arg << 3 | slot << 8
    targets: jax.Array  # next | alt << 16
    stmt: jax.Array
    length: int

    @classmethod
    def pack(cls, code):
        f = [code[..., i].reshape(-1) for i in range(bc.NUM_FIELDS)]
        control = f[bc.OP] | (f[bc.ARG] << 3) | (f[bc.SLOT] << 8)
        return cls(control, f[bc.NEXT] | (f[bc.ALT] << 16), f[bc.STMT], code.shape[1])

    def fetch(self, program, pc, with_stmt: bool):
        at = program * self.length + pc
        control, targets = self.control[at], self.targets[at]
        stmt = self.stmt[at] if with_stmt else jnp.int32(-1)
        return control & 7, (control >> 3) & 31, targets & 0xFFFF, targets >> 16, stmt, control >> 8


def _instruction_step(m: _Machine, code: _PackedCode, program, remap, walls, max_steps,
                      width: int) -> _Machine:
    """Executes the instruction at m.pc for one world; a no-op once it halted or ran out of steps.

    `code` holds every program of the device; this world runs number `program`.
    """
    traced = bool(m.trace[0].shape[0] or m.cond_trace[0].shape[0])
    op, arg, nxt, alt, stmt, slot = code.fetch(program, m.pc, traced)
    is_action, is_cond = op == bc.ACTION, op == bc.COND
    is_enter, is_loop = op == bc.REPEAT_ENTER, op == bc.REPEAT_LOOP
    slot_mask = jnp.arange(m.counters.shape[0]) == slot
    counter = jnp.sum(jnp.where(slot_mask, m.counters, 0))
    iterates = (is_enter & (arg > 0)) | (is_loop & (counter > 0))
    cost = is_action | is_cond | iterates
    run = (op != bc.HALT) & ~(cost & (m.steps >= max_steps))

    primitive = remap[jnp.clip(arg, 0, 4)]
    acts, tests = run & is_action, run & is_cond
    cell, facing, markers, here, value = world_ops.act_or_test(
        primitive, arg, is_cond, m.cell, m.facing, m.markers, m.here, walls, width, enabled=acts)

    forward = is_action | (is_cond & value) | iterates
    pc = jnp.where(run, jnp.where(forward, nxt, alt), m.pc)
    new_count = jnp.where(is_enter, arg - 1, counter - 1)
    counters = jnp.where(slot_mask & run & iterates, new_count, m.counters)

    # The trace entry this action writes (entry 0 is the initial state); out of range = no write.
    k = jnp.where(acts, m.num_actions + 1, m.trace[0].shape[0])
    entry = _trace_entry(cell, facing, here, stmt, width)
    trace = tuple(buf.at[k].set(v.astype(buf.dtype), mode="drop") if buf.shape[0] else buf
                  for buf, v in zip(m.trace, entry))
    j = jnp.where(tests, m.num_conds, m.cond_trace[0].shape[0])
    cond_trace = tuple(buf.at[j].set(v.astype(buf.dtype), mode="drop") if buf.shape[0] else buf
                       for buf, v in zip(m.cond_trace, (value, stmt)))
    return _Machine(cell, facing, markers, here, pc, m.steps + cost.astype(jnp.int32) * run,
                    counters, m.num_actions + acts, m.num_conds + tests, run, trace, cond_trace)


def _initial_machine(el: _Element, entry, width: int, num_slots: int, trace_len: int,
                     cond_trace_len: int) -> _Machine:
    size = el.cell.shape[0]
    here = jax.vmap(lambda m, c: m[c])(el.markers, el.cell)
    zeros = jnp.zeros(size, jnp.int32)
    first = _trace_entry(el.cell, el.facing, here, zeros - 1, width)
    trace = tuple(jnp.zeros((size, trace_len), v.dtype).at[:, :1].set(v[:, None]) for v in first)
    cond_trace = (jnp.zeros((size, cond_trace_len), bool),
                  jnp.zeros((size, cond_trace_len), jnp.int16))
    return _Machine(el.cell, el.facing, el.markers, here, entry[el.program], zeros,
                    jnp.zeros((size, num_slots), jnp.int32), zeros, zeros,
                    jnp.ones(size, bool), trace, cond_trace)


def _unfinished_first(running):
    """A permutation of the worlds listing the running ones first (a stable partition, O(N))."""
    ahead = jnp.cumsum(running) - 1
    behind = jnp.sum(running) + jnp.cumsum(~running) - 1
    position = jnp.where(running, ahead, behind)
    return jnp.zeros_like(position).at[position].set(
        jnp.arange(position.shape[0], dtype=position.dtype), unique_indices=True)


def _run_bytecode(el: _Element, code, entry, max_steps, width: int, num_slots: int,
                  trace_len: int, cond_trace_len: int, chunk: int, first_cap: int = 16):
    """Runs bytecode programs until each halts or exhausts its steps.

    Worlds run in lockstep chunks, so one long run would keep its whole chunk busy. Instead the
    work goes in rounds: each round runs every unfinished world for at most `cap` instructions, in
    chunks of unfinished worlds gathered together, and the cap doubles from round to round. Short
    runs finish in the first round; long ones end up sharing chunks with each other.
    """
    size = el.cell.shape[0]
    chunk = min(chunk, size)
    machine = _initial_machine(el, entry, width, num_slots, trace_len, cond_trace_len)
    packed = _PackedCode.pack(code)
    step = jax.vmap(lambda m, p, r, w: _instruction_step(m, packed, p, r, w, max_steps, width))

    def run_some(machine, ids, cap):
        part, env = (jax.tree.map(lambda x: x[ids], t) for t in (machine, el))
        part, _ = lax.while_loop(
            lambda c: jnp.any(c[0].running) & (c[1] < cap),
            lambda c: (step(c[0], env.program, env.remap, env.walls), c[1] + 1), (part, 0))
        return jax.tree.map(lambda buf, x: buf.at[ids].set(x, unique_indices=True), machine, part)

    def one_round(state):
        machine, cap = state
        order = _unfinished_first(machine.running)
        num_chunks = -(-jnp.sum(machine.running) // chunk)

        def body(i, machine):
            start = jnp.minimum(i * chunk, size - chunk)
            return run_some(machine, lax.dynamic_slice_in_dim(order, start, chunk), cap)

        return lax.fori_loop(0, num_chunks, body, machine), cap * 2

    machine, _ = lax.while_loop(lambda s: jnp.any(s[0].running), one_round,
                                (machine, jnp.int32(first_cap)))
    timeout = code[el.program, machine.pc, bc.OP] != bc.HALT
    action_trace = cond = None
    if trace_len:
        valid = jnp.arange(trace_len)[None] <= machine.num_actions[:, None]
        action_trace = ActionTrace(*machine.trace, valid=valid)
    if cond_trace_len:
        valid = jnp.arange(cond_trace_len)[None] < machine.num_conds[:, None]
        cond = CondTrace(*machine.cond_trace, valid=valid)
    return (machine.cell, machine.facing, machine.markers, timeout, machine.steps,
            machine.num_actions, machine.num_conds, action_trace, cond)


# ------------------------------------------------------------------------------------- driver
def _spread(walls, markers, row, col, facing, remaps, marker_dtype) -> _Element:
    """The elements of Cp programs x E worlds x S semantics, flattened to [Cp * E * S]."""
    num_prog, num_worlds, height, width = walls.shape
    lead = (num_prog, num_worlds, remaps.shape[0])
    size = int(np.prod(lead))

    def per_world(x):  # [Cp, E, ...] -> [Cp * E * S, ...]
        x = x[:, :, None]
        return jnp.broadcast_to(x, lead + x.shape[3:]).reshape((size,) + x.shape[3:])

    return _Element(
        program=jnp.arange(size, dtype=jnp.int32) // (num_worlds * remaps.shape[0]),
        remap=jnp.broadcast_to(remaps, lead + (5,)).reshape(size, 5),
        walls=per_world(world_ops.pack_walls(walls)),
        markers=per_world(markers.reshape(num_prog, num_worlds, -1).astype(marker_dtype)),
        cell=per_world((row * width + col).astype(jnp.int32)),
        facing=per_world(facing.astype(jnp.int32)))


def _straight_device(actions, walls, markers, row, col, facing, *, remaps, max_steps,
                     marker_dtype, chunk, trace_len):
    """One device's straight-line programs, `chunk` elements at a time; results [P, E, S, ...]."""
    num_local, num_worlds = walls.shape[:2]
    lead = (num_worlds, remaps.shape[0])
    size = max(1, min(chunk // (num_worlds * remaps.shape[0]), num_local))
    local = (actions, walls, markers, row, col, facing)

    def chunk_at(start):
        acts, *world = (lax.dynamic_slice_in_dim(x, start, size) for x in local)
        el = _spread(*world, remaps, marker_dtype)
        per_element = jnp.broadcast_to(acts[:, None, None], (size,) + lead + acts.shape[1:])
        out = _run_straight(el, per_element.reshape((-1,) + acts.shape[1:]), max_steps,
                            walls.shape[-1], trace_len)
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
    el = _spread(walls, markers, row, col, facing, remaps, marker_dtype)
    out = _run_bytecode(el, code, entry, max_steps, walls.shape[-1], num_slots, trace_len,
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
            devices=None) -> Execution:
    """Runs every program on each of its worlds under every semantics row.

    Args:
      code: compiled programs (`bytecode.compile_batch`), P of them.
      worlds: a World whose fields have leading axes [P, E] (E worlds per program).
      remaps: int [S, 5] action maps (`semantics.semantics_table`); default: the original only.
      max_steps: the step budget (SPEC §3).
      trace_len: action-trace entries to keep (K, entry 0 the initial state; 0 = no trace).
        Straight-line programs of A actions need A + 1.
      cond_trace_len: condition evaluations to keep (0 = none).
      chunk_size: about how many (program, world, semantics) runs a device does at once
        (default: DEFAULT_CHUNK for the batch's path).
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
    dtype = world_ops.marker_dtype(int(jnp.max(worlds.markers)) + added)
    devices = tuple(jax.local_devices() if devices is None else devices)
    pad = -num_prog % len(devices)
    program_arrays = (code.actions, None, None) if code.straight else (None, code.code, code.entry)
    if pad:
        program_arrays = [None if x is None else np.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
                          for x in program_arrays]
        worlds = jax.tree.map(lambda x: jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1),
                                                mode="edge"), worlds)
    out = _execute_kernel(
        *program_arrays, remaps, worlds, jnp.int32(max_steps), mesh=_mesh(devices),
        chunk=chunk_size or DEFAULT_CHUNK["straight" if code.straight else "bytecode"],
        marker_dtype=dtype,
        num_slots=code.num_slots, trace_len=trace_len, cond_trace_len=cond_trace_len)
    return jax.tree.map(lambda x: x[:num_prog], out) if pad else out
