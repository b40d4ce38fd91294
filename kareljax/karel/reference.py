"""The reference interpreter: plain Python over the program tree, the oracle for everything else.

It implements docs/spec.md §3 exactly. Every executed action, every condition evaluation (if, ifelse, each
while test) and every repeat iteration costs one step; a step that would exceed `max_steps` stops the
run with status "timeout" and the state reached so far.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kareljax.karel import syntax, world as world_lib
from kareljax.karel.semantics import ORIGINAL

OK, TIMEOUT = "ok", "timeout"
DEFAULT_MAX_STEPS = 1000


@dataclasses.dataclass(frozen=True)
class ActionRecord:
    """The state right after an action (entry 0: the initial state, stmt -1)."""

    row: int
    col: int
    facing: int
    markers_here: int  # marker count of the hero's cell
    stmt: int          # pre-order statement index of the action token
    markers: np.ndarray = dataclasses.field(compare=False, repr=False)  # the whole grid


@dataclasses.dataclass(frozen=True)
class CondRecord:
    value: bool
    stmt: int


@dataclasses.dataclass
class RunResult:
    world: world_lib.World
    status: str
    steps: int
    actions_executed: int
    actions: list[ActionRecord]  # empty unless recorded
    conds: list[CondRecord]


class _OutOfSteps(Exception):
    pass


class _Run:
    def __init__(self, program, world, remap, max_steps, record):
        self.world = world.copy()
        self.world.markers = self.world.markers.astype(np.int64)  # counts never wrap
        self.remap = np.asarray(remap)
        self.max_steps = max_steps
        self.steps = 0
        self.recording = record
        self.index = syntax.statement_indices(program)
        self.num_actions = 0
        self.actions = [self.record(-1)] if record else []
        self.conds = []

    def record(self, stmt: int) -> ActionRecord:
        w = self.world
        return ActionRecord(int(w.row), int(w.col), int(w.facing),
                            int(w.markers[w.row, w.col]), stmt, w.markers.copy())

    def step(self):
        if self.steps >= self.max_steps:
            raise _OutOfSteps
        self.steps += 1

    def is_clear(self, facing: int) -> bool:
        dr, dc = world_lib.DELTAS[facing % 4]
        return not self.world.walls[self.world.row + dr, self.world.col + dc]

    def test(self, cond: syntax.Cond) -> bool:
        w = self.world
        value = {
            syntax.FRONT_IS_CLEAR: lambda: self.is_clear(w.facing),
            syntax.LEFT_IS_CLEAR: lambda: self.is_clear(w.facing + 3),
            syntax.RIGHT_IS_CLEAR: lambda: self.is_clear(w.facing + 1),
            syntax.MARKERS_PRESENT: lambda: w.markers[w.row, w.col] > 0,
            syntax.NO_MARKERS_PRESENT: lambda: w.markers[w.row, w.col] == 0,
        }[cond.kind]()
        return bool(value) != cond.negated

    def act(self, primitive: int):
        w = self.world
        if primitive == syntax.MOVE:
            if self.is_clear(w.facing):
                dr, dc = world_lib.DELTAS[w.facing]
                w.row, w.col = w.row + dr, w.col + dc
        elif primitive == syntax.TURN_LEFT:
            w.facing = (w.facing + 3) % 4
        elif primitive == syntax.TURN_RIGHT:
            w.facing = (w.facing + 1) % 4
        elif primitive == syntax.PICK_MARKER:
            if w.markers[w.row, w.col] > 0:
                w.markers[w.row, w.col] -= 1
        elif primitive == syntax.PUT_MARKER:
            w.markers[w.row, w.col] += 1

    def condition(self, stmt, cond) -> bool:
        self.step()
        value = self.test(cond)
        if self.recording:
            self.conds.append(CondRecord(value, self.index[id(stmt)]))
        return value

    def block(self, stmts):
        for stmt in stmts:
            self.stmt(stmt)

    def stmt(self, stmt):
        if isinstance(stmt, syntax.Action):
            self.step()
            self.act(int(self.remap[stmt.kind]))
            self.num_actions += 1
            if self.recording:
                self.actions.append(self.record(self.index[id(stmt)]))
        elif isinstance(stmt, syntax.If):
            if self.condition(stmt, stmt.cond):
                self.block(stmt.body)
        elif isinstance(stmt, syntax.IfElse):
            self.block(stmt.body if self.condition(stmt, stmt.cond) else stmt.orelse)
        elif isinstance(stmt, syntax.While):
            while self.condition(stmt, stmt.cond):
                self.block(stmt.body)
        elif isinstance(stmt, syntax.Repeat):
            for _ in range(stmt.times):
                self.step()
                self.block(stmt.body)
        else:
            raise TypeError(f"not a Karel statement: {stmt!r}")


def run(program: syntax.Program, world: world_lib.World, *, remap=ORIGINAL,
        max_steps: int = DEFAULT_MAX_STEPS, record: bool = True) -> RunResult:
    """Runs `program` on a single `world` (left unchanged) under the action map `remap`.

    With `record` (the default) the result holds the action and condition traces.
    """
    state = _Run(program, world, remap, max_steps, record)
    try:
        state.block(program.body)
        status = OK
    except _OutOfSteps:
        status = TIMEOUT
    return RunResult(state.world, status, state.steps, state.num_actions, state.actions,
                     state.conds)
