"""Random programs with if/ifelse (docs/spec.md §4), one program at a time over its shown worlds' states.

A block is generated from a statement budget. Reading of docs/spec.md §4 (which follows the original):

* `r` is the budget still unspent at the moment a length is drawn. Drawing a statement spends one
  unit (so a conditional token uses one unit); `ifelse` may be drawn only while the budget before
  the draw is >= 3, `if` only while it is >= 2, and both only when >= 2 shown worlds reach the
  block. After the token, r = budget - 1: the else-body length is uniform on 1..r-2 (1 if r <= 2)
  and is generated first; it is spent, and with r = what is left the then-body length is uniform
  on 1..r-1 (1 if r <= 1). So an if/ifelse leaves at least one unit for the statements after it
  unless its bodies already take the minimum.
* A program's length is its budget: actions (nested ones included) plus one per conditional token,
  the count `program_length` returns. The original's files have exactly N // k programs of each
  such length; for straight-line programs it is the number of actions.
* The condition is uniform over the five (under `no_noops`: over those that split the worlds
  reaching the statement, i.e. hold on some but not all of them; with none, no conditional is
  drawn), then negated with probability 1/2. The then-body is generated on the worlds where the
  (possibly negated) condition holds, the else-body on the others.
* `no_noops` bans (an action bans its inverse) belong to one block: they start empty in every block
  and body, accumulate, and are cleared by a move or by a conditional statement, as in the original.
* Only the `num_shown` (5) shown worlds of each program are read; the held-out ones never matter.

Draws use one `random.Random` seeded from the numpy Generator, so output is a function of the seed
and the shown worlds.
"""
from __future__ import annotations

import bisect
import random

from kareljax.karel import syntax
from kareljax.data.program_options import (
    IF, IFELSE, INVERSE, ProgramOptions, as_generator, length_schedule)
from kareljax.data.shown_states import ShownState, ShownWorlds

NUM_SHOWN = 5
_NUM_CONDITIONS = len(syntax.CONDITIONS)


def program_length(program: syntax.Program) -> int:
    """The generator's length: every statement in the program, conditional tokens included."""
    return sum(1 for _ in syntax.walk(program.body))


class _Generator:
    def __init__(self, options: ProgramOptions, rnd: random.Random):
        self.weights = options.weights.tolist()
        self.no_noops = options.no_noops
        self.rnd = rnd

    def draw(self, weights: list[int]) -> int:
        cumulative, total = [], 0
        for w in weights:
            total += w
            cumulative.append(total)
        return bisect.bisect_right(cumulative, self.rnd.randrange(total))

    def splitting(self, states: list[ShownState]) -> list[int]:
        """Conditions true on some but not all of `states`."""
        out = []
        for kind in range(_NUM_CONDITIONS):
            true = sum(s.test(kind) for s in states)
            if 0 < true < len(states):
                out.append(kind)
        return out

    def block(self, budget: int, states: list[ShownState]) -> tuple[syntax.Stmt, ...]:
        stmts, banned, left = [], set(), budget
        while left:
            weights = list(self.weights)
            for action in banned:
                weights[action] = 0
            if left < 3 or len(states) < 2:
                weights[IFELSE] = 0
            if left < 2 or len(states) < 2:
                weights[IF] = 0
            conditions = range(_NUM_CONDITIONS)
            if self.no_noops and (weights[IF] or weights[IFELSE]):
                conditions = self.splitting(states)
                if not conditions:
                    weights[IF] = weights[IFELSE] = 0
            kind = self.draw(weights)
            left -= 1
            if kind in (IF, IFELSE):
                stmt, used = self.conditional(kind, left, conditions, states)
                left -= used
                banned.clear()
            else:
                for s in states:
                    s.act(kind)
                stmt = syntax.Action(kind)
                if self.no_noops:
                    if kind == syntax.MOVE:
                        banned.clear()
                    else:
                        banned.add(INVERSE[kind])
            stmts.append(stmt)
        return tuple(stmts)

    def conditional(self, kind: int, left: int, conditions, states):
        """(the if/ifelse statement, budget its bodies used) with `left` units after its token."""
        cond = syntax.Cond(conditions[self.rnd.randrange(len(conditions))],
                           self.rnd.random() < 0.5)
        taken = [s.test(cond.kind) != cond.negated for s in states]
        used = 0
        if kind == IFELSE:
            else_len = self.rnd.randint(1, left - 2) if left > 2 else 1
            orelse = self.block(else_len, [s for s, t in zip(states, taken) if not t])
            used, left = else_len, left - else_len
        then_len = self.rnd.randint(1, left - 1) if left > 1 else 1
        body = self.block(then_len, [s for s, t in zip(states, taken) if t])
        used += then_len
        stmt = syntax.IfElse(cond, body, orelse) if kind == IFELSE else syntax.If(cond, body)
        return stmt, used


def conditional_programs(seed_or_rng, n: int, options: ProgramOptions, worlds,
                         num_shown: int = NUM_SHOWN) -> list[syntax.Program]:
    """n // k * k programs (k lengths); program i is generated on `worlds[i, :num_shown]`.

    `worlds` is a World with leading axes [P, E] (numpy or jax), P >= the number of programs; only
    its first `num_shown` examples per program are read. Options without conditionals give
    straight-line trees of the same distribution as `straight_line_batch` (not the same stream).
    """
    rng = as_generator(seed_or_rng)
    lengths = length_schedule(rng, n, options)
    return programs_of_lengths(rng, lengths, options, worlds, num_shown)


def programs_of_lengths(seed_or_rng, lengths, options: ProgramOptions, worlds,
                        num_shown: int = NUM_SHOWN) -> list[syntax.Program]:
    """One program per entry of `lengths`, program i generated on `worlds[i, :num_shown]`."""
    rng = as_generator(seed_or_rng)
    shown = ShownWorlds(worlds, num_shown)
    if len(shown) < len(lengths):
        raise ValueError(f"worlds: {len(lengths)} programs need worlds for as many programs, got "
                         f"{len(shown)}")
    gen = _Generator(options, random.Random(int(rng.integers(1 << 63))))
    return [syntax.Program(gen.block(int(length), shown.states(i)))
            for i, length in enumerate(lengths)]
