"""Training arrays from stored records (`example_codec`): token ids, loss mask, padding mask.

Vectorized over the batch (numpy or jax): the layout's template is tiled, the shown examples' cells
are scattered into their positions, the program is appended. A batch is a dict:

* `tokens` int32 [B, L]: the whole example (`Examples:` ... `Code: run{ ... }`), PAD after it;
* `loss_mask` bool [B, L]: positions whose token is a training target (predicted from the
  position before): every real token but the first (`loss_on="all"`, the original) or only the
  program's tokens after `run{` (`loss_on="program"`);
* `valid` bool [B, L]: real tokens (not PAD);
* `length` int32 [B]: the program's length.
"""
from __future__ import annotations

import numpy as np

from kareljax.data import tokens

LOSS_ON = ("all", "program")


def _xp(x):
    return tokens._xp(x)


def example_tokens(layout: tokens.Layout, inputs, outputs, program):
    """int32 [B, L] from glyph grids [B, E, h, w] (inputs, outputs) and program ids [B, P]."""
    xp = _xp(inputs)
    n = inputs.shape[0]
    cells = xp.stack([inputs[:, :layout.n_shown], outputs[:, :layout.n_shown]], 2)
    cells = cells.reshape(n, -1).astype(np.int32) + tokens.WALL
    program = xp.asarray(program).astype(np.int32)
    if program.shape[1] != layout.max_program_tokens:
        raise ValueError(f"programs have {program.shape[1]} tokens; the layout holds "
                         f"{layout.max_program_tokens}")
    template = xp.asarray(layout.template()[:-1])
    prompt = xp.broadcast_to(template, (n, len(template)))
    pos = layout.cell_positions().reshape(-1)
    if xp is np:
        prompt = prompt.copy()
        prompt[:, pos] = cells
    else:
        prompt = prompt.at[:, pos].set(cells)
    return xp.concatenate([prompt, program], 1)


def training_batch(layout: tokens.Layout, records: dict, loss_on: str = "all") -> dict:
    """The training arrays of records {program, length, inputs, outputs} (uint8, [B, ...])."""
    if loss_on not in LOSS_ON:
        raise ValueError(f"loss_on must be one of {LOSS_ON}, got {loss_on!r}")
    xp = _xp(records["inputs"])
    ids = example_tokens(layout, records["inputs"], records["outputs"], records["program"])
    end = layout.program_start + tokens.program_length(ids[:, layout.program_start:])
    pos = xp.arange(ids.shape[1])[None]
    valid = pos < end[:, None]
    first = 1 if loss_on == "all" else layout.program_start + 1
    return {"tokens": ids, "loss_mask": valid & (pos >= first), "valid": valid,
            "length": xp.asarray(records["length"]).astype(np.int32)}
