"""Accuracy floors a trained model must beat (issue 7): programs that ignore the spec.

* the no-op floor: `pick_marker()`, which changes nothing visible (the hero never starts on a
  marker), so it solves exactly the specs whose shown outputs equal their inputs;
* the best constant program: the single straight-line program (up to `max_actions` actions) that
  solves the most specs of the split, the best a model blind to the grids can do.
"""
from __future__ import annotations

import itertools

import numpy as np

from kareljax.data import tokens as T
from kareljax.eval import accuracy
from kareljax.karel import printer, syntax

NOOP = (syntax.ACTIONS.index("pick_marker"),)


def straight_programs(max_actions: int) -> list[tuple[int, ...]]:
    """Every sequence of 1..max_actions action ids."""
    return [p for n in range(1, max_actions + 1)
            for p in itertools.product(range(len(syntax.ACTIONS)), repeat=n)]


def constant_rates(records: dict, data, programs, chunk_specs: int = 200_000) -> np.ndarray:
    """`correct` rate of each constant program (action-id tuples) over all records."""
    n = len(records["length"])
    width = records["program"].shape[1]
    ids = T.encode_straight(np.array([list(p) + [-1] * (width - 2 - len(p)) for p in programs]),
                            width)
    per_chunk = max(1, chunk_specs // max(n, 1))
    rates = []
    for start in range(0, len(ids), per_chunk):
        block = ids[start:start + per_chunk]
        tiled = {k: np.concatenate([v] * len(block)) for k, v in records.items()}
        correct = accuracy.score(np.repeat(block, n, axis=0), tiled, data.n_shown,
                                 data.max_steps)["correct"]
        rates.extend(correct.reshape(len(block), n).mean(1))
    return np.asarray(rates)


def constant_baselines(records: dict, data, max_actions: int = 3) -> dict:
    """{noop_floor, best_constant: {code, correct}} on `records`."""
    programs = straight_programs(max_actions)
    rates = constant_rates(records, data, programs)
    best = int(np.argmax(rates))
    text = printer.to_text(T.decode_program(T.encode_straight(np.array(programs[best]))))
    code = " ".join(text.split())
    return {"noop_floor": float(rates[programs.index(NOOP)]),
            "best_constant": {"code": code, "correct": float(rates[best]),
                              "searched": f"all {len(programs)} programs of 1-{max_actions} "
                                          "actions"}}
