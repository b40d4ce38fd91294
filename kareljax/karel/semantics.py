"""Alternative semantics (docs/spec.md §3): which primitive each action token executes.

`ALT_MAPS[i][a]` is the primitive executed by action token `a` (ids of `syntax.ACTIONS`) under the
original project's alternative map `i`. `ORIGINAL` is the identity. Conditions are never remapped.
"""
from __future__ import annotations

import numpy as np

from kareljax.karel.syntax import ACTIONS

_LETTER = {"M": "move", "L": "turn_left", "R": "turn_right", "P": "pick_marker", "U": "put_marker"}
# Columns: what the tokens P, U, R, L, M now execute (docs/spec.md §3 table, rows 0..11).
_TABLE_COLUMNS = ("pick_marker", "put_marker", "turn_right", "turn_left", "move")
_TABLE = ("UPLRM", "LMPUR", "URLMP", "RLMRL", "RMUPL", "UPMRL",
          "UPMRL", "UPLRM", "UPRML", "UPMLR", "UPMRL", "UPLMR")

ORIGINAL = np.arange(len(ACTIONS), dtype=np.int32)


def _row(letters: str) -> np.ndarray:
    out = np.empty(len(ACTIONS), np.int32)
    for token, letter in zip(_TABLE_COLUMNS, letters):
        out[ACTIONS.index(token)] = ACTIONS.index(_LETTER[letter])
    return out


ALT_MAPS = np.stack([_row(r) for r in _TABLE])  # int32 [12, 5]
ICML_ALTS = (0, 3, 5, 8, 11)
COLM_ALTS = (8, 11)


def semantics_table(alts=()) -> np.ndarray:
    """Remap tables [1 + len(alts), 5]: row 0 the original semantics, then each chosen alt."""
    for a in alts:
        if not 0 <= a < len(ALT_MAPS):
            raise ValueError(f"alternative semantics index {a} is not in 0..{len(ALT_MAPS) - 1}")
    return np.concatenate([ORIGINAL[None], ALT_MAPS[list(alts)]]).astype(np.int32)
