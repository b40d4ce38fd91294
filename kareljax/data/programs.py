"""Random Karel programs of the original generator's distribution (docs/spec.md §4), seeded.

Two generators share `ProgramOptions` and the length schedule (exactly n // k programs of each of
the k lengths, in a seeded shuffled order; the remainder of n is dropped):

* `straight_line_batch`: programs without conditionals, vectorized over programs with numpy (a loop
  over the <= max_length positions only). It returns action ids [n, max_length] padded with -1 and
  the lengths, the layout of `bytecode.straight_line_code`; `straight_line_bytecode` turns them into
  a `Bytecode` for the interpreter's fast path without building trees, `programs_from_actions`
  into `syntax.Program` trees.
* `conditional_programs` (module `conditional_programs`): with if/ifelse, one program at a time,
  tracking the shown worlds' states; it returns trees.

Length (`program_length`) is the generator's statement budget: every action, nested ones included,
plus one per conditional token. For straight-line programs it is the number of actions.
"""
from __future__ import annotations

import numpy as np

from kareljax.karel import bytecode as bc
from kareljax.karel import syntax
from kareljax.data.conditional_programs import (
    NUM_SHOWN, conditional_programs, program_length, programs_of_lengths)
from kareljax.data.program_options import (
    BASE_WEIGHTS, IF, IFELSE, INVERSE, NUM_ACTIONS, STATEMENTS, ProgramOptions, as_generator,
    length_schedule, per_length_counts)

__all__ = [
    "BASE_WEIGHTS", "IF", "IFELSE", "NUM_SHOWN", "STATEMENTS", "ProgramOptions",
    "conditional_programs", "length_schedule", "per_length_counts", "program_length",
    "programs_of_lengths",
    "programs_from_actions", "straight_line_batch", "straight_line_bytecode",
]

# Under no_noops a program's ban state is a bit mask over action ids: bit a set = action a banned.
_NUM_BAN_STATES = 1 << NUM_ACTIONS
_BAN_BIT = np.zeros(NUM_ACTIONS, np.int64)
for _action, _inverse in INVERSE.items():
    _BAN_BIT[_action] = 1 << _inverse


def _cumulative_weights(options: ProgramOptions) -> np.ndarray:
    """int64 [ban states, 5]: running sums of the action weights allowed in each ban state."""
    states = np.arange(_NUM_BAN_STATES)[:, None]
    allowed = ((states >> np.arange(NUM_ACTIONS)[None]) & 1) == 0
    return np.cumsum(options.weights[:NUM_ACTIONS][None] * allowed, axis=1)


def straight_line_batch(seed_or_rng, n: int, options: ProgramOptions
                        ) -> tuple[np.ndarray, np.ndarray]:
    """n // k * k straight-line programs: (actions int32 [N, max_length] -1 padded, lengths [N]).

    Actions are drawn i.i.d. by weight; under `no_noops` each program carries a ban mask (an action
    bans its inverse until the next move).
    """
    if options.has_conditionals:
        raise ValueError("no_conditionals: straight_line_batch draws programs without if/ifelse; "
                         "set no_conditionals=True or use conditional_programs")
    rng = as_generator(seed_or_rng)
    lengths = length_schedule(rng, n, options)
    cumulative = _cumulative_weights(options)
    actions = np.full((len(lengths), options.max_length), -1, np.int32)
    bans = np.zeros(len(lengths), np.int64)
    for t in range(options.max_length):
        rows = np.flatnonzero(lengths > t)
        cum = cumulative[bans[rows]] if options.no_noops else cumulative[:1]
        draw = rng.integers(0, cum[:, -1], size=len(rows))
        kind = (cum <= draw[:, None]).sum(axis=1)
        actions[rows, t] = kind
        if options.no_noops:
            bans[rows] = np.where(kind == syntax.MOVE, 0, bans[rows] | _BAN_BIT[kind])
    return actions, lengths


def programs_from_actions(actions: np.ndarray, lengths: np.ndarray | None = None
                          ) -> list[syntax.Program]:
    """Trees for rows of -1-padded action ids (each statement a distinct node)."""
    actions = np.asarray(actions)
    lengths = (actions >= 0).sum(axis=1) if lengths is None else np.asarray(lengths)
    return [syntax.Program(tuple(syntax.Action(k) for k in row[:size]))
            for row, size in zip(actions.tolist(), lengths.tolist())]


def straight_line_bytecode(actions: np.ndarray, lengths: np.ndarray | None = None) -> bc.Bytecode:
    """The `Bytecode` that `compile_batch(programs_from_actions(actions), A + 1)` gives, vectorized."""
    actions = np.asarray(actions, np.int32)
    num, width = actions.shape
    lengths = (actions >= 0).sum(axis=1) if lengths is None else np.asarray(lengths)
    if lengths.min(initial=1) < 1:
        raise ValueError("lengths: every program needs at least one action")
    # Instruction j >= 1 holds statement length - j and continues at j - 1 (compile order).
    j = np.arange(1, width + 1)[None]
    stmt = lengths[:, None] - j
    valid = stmt >= 0
    kinds = np.take_along_axis(actions, np.maximum(stmt, 0), axis=1)
    code = np.zeros((num, width + 1, bc.NUM_FIELDS), np.int32)
    code[:, :, bc.STMT] = -1
    code[:, 1:, bc.OP] = np.where(valid, bc.ACTION, bc.HALT)
    code[:, 1:, bc.ARG] = np.where(valid, kinds, 0)
    code[:, 1:, bc.NEXT] = np.where(valid, j - 1, 0)
    code[:, 1:, bc.STMT] = np.where(valid, stmt, -1)
    return bc.Bytecode(code, lengths.astype(np.int32), 1, actions)
