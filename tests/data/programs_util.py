"""Helpers for the program-generator tests: chi-square p-values, statement counts, rule checkers."""
from __future__ import annotations

import collections

import jax.scipy.special as jsp
import numpy as np

from kareljax.data import programs as P
from kareljax.data.program_options import INVERSE
from kareljax.karel import reference, syntax, world as world_lib

ALPHA = 1e-3  # generous significance: with fixed seeds a failure means a real discrepancy
NUM_SHOWN = 5


def chi2_sf(stat: float, df: int) -> float:
    """P(chi-square with df degrees of freedom >= stat)."""
    return float(jsp.gammaincc(df / 2.0, stat / 2.0))


def goodness_of_fit(counts, probs) -> float:
    """p-value of observed `counts` against cell probabilities `probs` (zero-probability cells must
    be empty)."""
    counts, probs = np.asarray(counts, float), np.asarray(probs, float)
    assert not counts[probs == 0].any(), f"counts in impossible cells: {counts}, {probs}"
    keep = probs > 0
    expected = counts.sum() * probs[keep] / probs[keep].sum()
    stat = ((counts[keep] - expected) ** 2 / expected).sum()
    return chi2_sf(stat, keep.sum() - 1)


def homogeneity(a, b) -> float:
    """p-value that count vectors `a` and `b` come from one distribution (2 x k contingency)."""
    table = np.array([a, b], float)
    table = table[:, table.sum(axis=0) > 0]
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    stat = ((table - expected) ** 2 / expected).sum()
    return chi2_sf(stat, table.shape[1] - 1)


def kind_of(stmt) -> int:
    if isinstance(stmt, syntax.Action):
        return stmt.kind
    return P.IF if isinstance(stmt, syntax.If) else P.IFELSE


def kind_counts(programs) -> np.ndarray:
    """int [7]: statements of each kind (actions, if, ifelse), nested ones included."""
    counts = np.zeros(len(P.STATEMENTS), int)
    for p in programs:
        for s in syntax.walk(p.body):
            counts[kind_of(s)] += 1
    return counts


def histogram(values, support) -> np.ndarray:
    c = collections.Counter(values)
    return np.array([c[v] for v in support])


def size(stmt) -> int:
    return sum(1 for _ in syntax.walk((stmt,)))


def block_size(stmts) -> int:
    return sum(size(s) for s in stmts)


def no_noop_violations(stmts) -> list[str]:
    """Where a block breaks the no_noops bans (inverse after an action, until a move or a
    conditional; every body starts with no bans)."""
    bad, banned = [], set()
    for i, s in enumerate(stmts):
        if isinstance(s, syntax.Action):
            if s.kind in banned:
                bad.append(f"statement {i}: {syntax.ACTIONS[s.kind]} after its inverse")
            banned = set() if s.kind == syntax.MOVE else banned | {INVERSE[s.kind]}
        else:
            banned = set()
            for body in (s.body, getattr(s, "orelse", ())):
                bad += no_noop_violations(body)
    return bad


def condition_values(program, worlds) -> dict[int, list[bool]]:
    """Statement index of each conditional -> its values on the shown worlds that reach it."""
    values = collections.defaultdict(list)
    for w in worlds:
        for rec in reference.run(program, w).conds:
            values[rec.stmt].append(rec.value)
    return values


def shown_worlds(worlds, i: int) -> list:
    """Program i's shown worlds as single numpy Worlds."""
    return [world_lib.World(*(np.asarray(getattr(worlds, f))[i, e]
                              for f in ("walls", "markers", "row", "col", "facing")))
            for e in range(NUM_SHOWN)]


def numpy_worlds(seed: int, shape: tuple[int, ...], height: int = 8, width: int = 8
                 ) -> world_lib.World:
    """docs/spec.md §1 random worlds drawn with numpy (no compile; `random_worlds` is the real thing)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.arange(height)[:, None], np.arange(width)[None, :]
    border = (rows == 0) | (rows == height - 1) | (cols == 0) | (cols == width - 1)
    row = rng.integers(1, height - 1, shape)
    col = rng.integers(1, width - 1, shape)
    hero = (rows == row[..., None, None]) & (cols == col[..., None, None])
    walls = ((rng.random(shape + (height, width)) < 0.1) | border) & ~hero
    markers = (rng.random(walls.shape) < 0.1) & ~walls & ~hero
    return world_lib.World(walls, markers.astype(np.int32), row.astype(np.int32),
                           col.astype(np.int32), rng.integers(0, 4, shape).astype(np.int32))
