"""Grammar-random programs of the full language, for tests and benchmarks.

These follow no paper distribution (the dataset generators in `kareljax.data` do); they exercise
every construct: the five actions, if, ifelse, while (terminating or not), repeat and `not`.
"""
from __future__ import annotations

import numpy as np

from kareljax.karel import syntax

# Relative weights of statement kinds at depth < max_depth (deeper: actions only).
_KINDS = ("action", "if", "ifelse", "while", "repeat")


def random_cond(rng: np.random.Generator) -> syntax.Cond:
    return syntax.Cond(int(rng.integers(len(syntax.CONDITIONS))), bool(rng.integers(2)))


def random_block(rng: np.random.Generator, depth: int, max_depth: int, max_block: int,
                 weights=(6, 1, 1, 1, 1)) -> tuple[syntax.Stmt, ...]:
    size = int(rng.integers(1, max_block + 1))
    p = np.asarray(weights if depth < max_depth else (1, 0, 0, 0, 0), float)
    stmts = []
    for kind in rng.choice(_KINDS, size=size, p=p / p.sum()):
        inner = lambda: random_block(rng, depth + 1, max_depth, max_block, weights)
        if kind == "action":
            stmts.append(syntax.Action(int(rng.integers(len(syntax.ACTIONS)))))
        elif kind == "if":
            stmts.append(syntax.If(random_cond(rng), inner()))
        elif kind == "ifelse":
            stmts.append(syntax.IfElse(random_cond(rng), inner(), inner()))
        elif kind == "while":
            stmts.append(syntax.While(random_cond(rng), inner()))
        else:
            stmts.append(syntax.Repeat(int(rng.integers(syntax.MAX_REPEAT + 1)), inner()))
    return tuple(stmts)


def random_program(rng: np.random.Generator, max_depth: int = 3, max_block: int = 4,
                   weights=(6, 1, 1, 1, 1)) -> syntax.Program:
    """A random program; `weights` are for action, if, ifelse, while, repeat."""
    return syntax.Program(random_block(rng, 0, max_depth, max_block, weights))


def random_straight_program(rng: np.random.Generator, length: int,
                            weights=(5, 3, 3, 2, 2)) -> syntax.Program:
    """`length` actions drawn i.i.d. (default: the paper's move/left/right/pick/put weights)."""
    p = np.asarray(weights, float)
    kinds = rng.choice(len(syntax.ACTIONS), size=length, p=p / p.sum())
    return syntax.Program(tuple(syntax.Action(int(k)) for k in kinds))
