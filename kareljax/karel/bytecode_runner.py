"""The general path: bytecode (`bytecode.py`) executed one instruction per world per iteration.

The step is branch-free and vmapped over a chunk of worlds; worlds that halted or ran out of steps
are masked. `run_bytecode` schedules the chunks in rounds so long runs do not hold short ones back.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from kareljax.karel import bytecode as bc
from kareljax.karel import world_ops
from kareljax.karel.execution import ActionTrace, CondTrace, Element, trace_entry


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
    entry = trace_entry(cell, facing, here, stmt, width)
    trace = tuple(buf.at[k].set(v.astype(buf.dtype), mode="drop") if buf.shape[0] else buf
                  for buf, v in zip(m.trace, entry))
    j = jnp.where(tests, m.num_conds, m.cond_trace[0].shape[0])
    cond_trace = tuple(buf.at[j].set(v.astype(buf.dtype), mode="drop") if buf.shape[0] else buf
                       for buf, v in zip(m.cond_trace, (value, stmt)))
    return _Machine(cell, facing, markers, here, pc, m.steps + cost.astype(jnp.int32) * run,
                    counters, m.num_actions + acts, m.num_conds + tests, run, trace, cond_trace)


def _initial_machine(el: Element, entry, width: int, num_slots: int, trace_len: int,
                     cond_trace_len: int) -> _Machine:
    size = el.cell.shape[0]
    here = jax.vmap(lambda m, c: m[c])(el.markers, el.cell)
    zeros = jnp.zeros(size, jnp.int32)
    first = trace_entry(el.cell, el.facing, here, zeros - 1, width)
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


def run_bytecode(el: Element, code, entry, max_steps, width: int, num_slots: int,
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
