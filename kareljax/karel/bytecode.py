"""Compiles program trees to fixed-length integer bytecode for the JAX interpreter.

One instruction per statement (two for `repeat`: enter and loop-back), each with explicit successors,
so execution needs no jump instructions: every executed instruction does real work. Instruction 0 is
HALT, so zero padding halts. Columns of the `code` array:

  OP     HALT | ACTION | COND | REPEAT_ENTER | REPEAT_LOOP
  ARG    action id (ACTION), condition id + 5 * negated (COND), repeat count (REPEAT_ENTER)
  NEXT   successor (ACTION), successor when true (COND), body start (REPEAT_*)
  ALT    successor when false (COND), exit (REPEAT_*)
  STMT   pre-order statement index, the one traces record (-1 for HALT)
  SLOT   loop-counter slot of a repeat (its repeat-nesting depth)
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kareljax.karel import syntax

HALT, ACTION, COND, REPEAT_ENTER, REPEAT_LOOP = range(5)
# The interpreter packs jump targets into 16 bits and records statement indices as int16.
MAX_INSTRUCTIONS = 1 << 15
OP, ARG, NEXT, ALT, STMT, SLOT = range(6)
NUM_FIELDS = 6


@dataclasses.dataclass(frozen=True)
class Bytecode:
    """A batch of compiled programs, padded to one length."""

    code: np.ndarray   # int32 [B, L, NUM_FIELDS]
    entry: np.ndarray  # int32 [B]: the first instruction
    num_slots: int     # loop counters needed (max repeat nesting, at least 1)
    actions: np.ndarray | None  # int32 [B, A]: action ids in order, -1 padded; only when every
                                # program is a straight line of actions (the fast path)

    @property
    def straight(self) -> bool:
        return self.actions is not None

    @property
    def length(self) -> int:
        return self.code.shape[1]


def compile_program(program: syntax.Program) -> tuple[np.ndarray, int]:
    """Returns (code [n, NUM_FIELDS], entry pc) for one program."""
    index = syntax.statement_indices(program)
    rows = [[HALT, 0, 0, 0, -1, 0]]

    def new(row) -> int:
        rows.append(row)
        return len(rows) - 1

    def block(stmts, cont: int, depth: int) -> int:
        # Compiled back to front, so each statement's continuation is already known.
        for stmt in reversed(stmts):
            cont = single(stmt, cont, depth)
        return cont

    def single(stmt, cont: int, depth: int) -> int:
        i = index[id(stmt)]
        if isinstance(stmt, syntax.Action):
            return new([ACTION, stmt.kind, cont, 0, i, 0])
        if isinstance(stmt, syntax.If):
            arg = stmt.cond.kind + 5 * stmt.cond.negated
            return new([COND, arg, block(stmt.body, cont, depth), cont, i, 0])
        if isinstance(stmt, syntax.IfElse):
            arg = stmt.cond.kind + 5 * stmt.cond.negated
            orelse = block(stmt.orelse, cont, depth)
            return new([COND, arg, block(stmt.body, cont, depth), orelse, i, 0])
        if isinstance(stmt, syntax.While):
            arg = stmt.cond.kind + 5 * stmt.cond.negated
            test = new([COND, arg, 0, cont, i, 0])
            rows[test][NEXT] = block(stmt.body, test, depth)
            return test
        if isinstance(stmt, syntax.Repeat):
            loop = new([REPEAT_LOOP, 0, 0, cont, i, depth])
            body = block(stmt.body, loop, depth + 1)
            rows[loop][NEXT] = body
            return new([REPEAT_ENTER, stmt.times, body, cont, i, depth])
        raise TypeError(f"not a Karel statement: {stmt!r}")

    entry = block(program.body, 0, 0)
    return np.array(rows, np.int32), entry


def straight_line_code(programs: list[syntax.Program], length: int | None = None) -> np.ndarray:
    """Action ids [B, L] of straight-line programs in execution order, padded with -1."""
    acts = [[s.kind for s in p.body] for p in programs]
    length = max(len(a) for a in acts) if length is None else length
    out = np.full((len(programs), length), -1, np.int32)
    for b, a in enumerate(acts):
        if len(a) > length:
            raise ValueError(f"program {b} has {len(a)} actions, more than length {length}")
        out[b, :len(a)] = a
    return out


def compile_batch(programs: list[syntax.Program], length: int | None = None) -> Bytecode:
    """Compiles and pads a batch; `length` fixes the padded length (for one jit shape)."""
    if not programs:
        raise ValueError("compile_batch needs at least one program")
    compiled = [compile_program(p) for p in programs]
    longest = max(len(c) for c, _ in compiled)
    length = longest if length is None else length
    if length > MAX_INSTRUCTIONS:
        raise ValueError(f"programs of {length} instructions exceed the limit of {MAX_INSTRUCTIONS}")
    if longest > length:
        raise ValueError(f"a program needs {longest} instructions, more than length {length}")
    code = np.zeros((len(programs), length, NUM_FIELDS), np.int32)
    for b, (c, _) in enumerate(compiled):
        code[b, :len(c)] = c
    code[:, :, STMT] = np.where(code[:, :, OP] == HALT, -1, code[:, :, STMT])
    entry = np.array([e for _, e in compiled], np.int32)
    slots = max(1, max(syntax.repeat_depth(p.body) for p in programs))
    straight = all(syntax.is_straight_line(p) for p in programs)
    actions = straight_line_code(programs, length - 1) if straight else None
    return Bytecode(code, entry, slots, actions)
