"""Running decoded program tokens on a spec's input worlds with the JAX interpreter.

Straight-line programs (the icml and colm presets) become bytecode without building trees; other
programs are decoded to trees and compiled one by one on the host. A token sequence that is not a
program (impossible under the grammar mask, possible for arbitrary tokens) runs as a program that
fails every example. Batches are padded to a few fixed sizes so the interpreter compiles rarely.
"""
from __future__ import annotations

import numpy as np

from kareljax.data import generate, programs, tokens as T
from kareljax.karel import bytecode, records, syntax
from kareljax.karel.world import World


def straight_actions(program_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(actions [B, A] -1 padded, ok [B]) of program ids [B, P] starting with `run{`.

    ok: the row is `run{`, >= 1 actions, `}`, then only PAD.
    """
    ids = np.asarray(program_ids)
    body = ids[:, 1:]
    is_action = (body >= T.ACTION0) & (body < T.ACTION0 + len(syntax.ACTIONS))
    count = np.argmin(np.concatenate([is_action, np.zeros((len(ids), 1), bool)], 1), axis=1)
    rows = np.arange(len(ids))
    closes = np.concatenate([body, np.full((len(ids), 1), T.PAD)], 1)[rows, count] == T.CLOSE
    after = np.arange(body.shape[1])[None] > count[:, None]
    ok = (ids[:, 0] == T.OPEN) & (count >= 1) & closes & ~((body != T.PAD) & after).any(1)
    actions = np.where(is_action & (np.arange(body.shape[1])[None] < count[:, None]) & ok[:, None],
                       body - T.ACTION0, -1)
    actions[~ok, 0] = syntax.PICK_MARKER  # placeholder; `ok` marks these programs as failed
    return actions.astype(np.int32), ok


def compile_tokens(program_ids: np.ndarray, length: int | None = None
                   ) -> tuple[bytecode.Bytecode, np.ndarray]:
    """(bytecode, ok [B]) of program ids [B, P] starting with `run{`."""
    ids = np.asarray(program_ids)
    actions, ok = straight_actions(ids)
    if ok.all():
        return programs.straight_line_bytecode(actions), ok
    trees, ok = [], np.zeros(len(ids), bool)
    for i, row in enumerate(ids):
        try:
            trees.append(T.decode_program(row))
            ok[i] = True
        except T.TokenError:
            trees.append(syntax.Program((syntax.Action(syntax.PICK_MARKER),)))
    return bytecode.compile_batch(trees, length), ok


def padded_batch(program_ids, inputs: World) -> tuple[bytecode.Bytecode, World, np.ndarray]:
    """(bytecode, worlds, ok) of program ids [B, P] and worlds [B, E], both padded with copies of
    row 0 to `records.padded_size(B)` rows (a few fixed shapes, so the interpreter compiles rarely)."""
    ids = np.asarray(program_ids)
    num = len(ids)
    padded = records.padded_size(num)
    pad = lambda x: np.concatenate([x, np.repeat(x[:1], padded - num, 0)])  # noqa: E731
    code, ok = compile_tokens(pad(ids), length=padded_length(ids))
    worlds = World(*(pad(np.asarray(x)) for x in (inputs.walls, inputs.markers, inputs.row,
                                                   inputs.col, inputs.facing)))
    return code, worlds, ok


def run_tokens(program_ids, inputs: World, max_steps: int) -> tuple[World, np.ndarray]:
    """(final worlds [B, E], ok [B]) of program ids [B, P] on worlds [B, E] (original semantics)."""
    num = len(program_ids)
    code, worlds, ok = padded_batch(program_ids, inputs)
    final = generate.run_outputs(code, worlds, max_steps)
    return World(*(np.asarray(x)[:num] for x in (final.walls, final.markers, final.row, final.col,
                                                  final.facing))), ok[:num]


def padded_length(ids: np.ndarray) -> int:
    """A fixed code length for program ids of width P (instructions <= tokens)."""
    return records.padded_size(ids.shape[1] + 1)
