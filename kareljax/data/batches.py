"""Training arrays from stored records (`example_codec`): token ids, loss mask, padding mask.

Vectorized over the batch (numpy or jax): the layout's template is tiled, the shown examples' cells
are scattered into their positions, the program goes into its slots (`tokens.fill`). A batch is a
dict:

* `tokens` int32 [B, L]: the whole example (`Examples:` ... `Code: run{ ... }`), PAD after it; in
  execution order (`tokens.Layout.order`) the program's slots are PAD-filled and the outputs follow;
* `loss_mask` bool [B, L]: positions whose token is a training target (predicted from the
  position before): every real token but the first (`loss_on="all"`, the original) or only the
  program's tokens after `run{` (`loss_on="program"`);
* `valid` bool [B, L]: real tokens (not PAD, neither after the example nor filling the program's
  slots);
* `length` int32 [B]: the program's length.
"""
from __future__ import annotations

import numpy as np

from kareljax.data import tokens

LOSS_ON = ("all", "program")


def _xp(x):
    return tokens._xp(x)


def example_tokens(layout: tokens.Layout, inputs, outputs, program):
    """int32 [B, max_length] from glyph grids [B, E, h, w] (inputs, outputs) and program ids
    [B, max_program_tokens], in the layout's order."""
    xp = _xp(inputs)
    cells = xp.stack([inputs[:, :layout.n_shown], outputs[:, :layout.n_shown]], 2)
    cells = xp.asarray(cells).astype(np.int32) + tokens.WALL
    return tokens.fill(layout, cells, xp.asarray(program).astype(np.int32))


def training_batch(layout: tokens.Layout, records: dict, loss_on: str = "all") -> dict:
    """The training arrays of records {program, length, inputs, outputs} (uint8, [B, ...])."""
    if loss_on not in LOSS_ON:
        raise ValueError(f"loss_on must be one of {LOSS_ON}, got {loss_on!r}")
    xp = _xp(records["inputs"])
    ids = example_tokens(layout, records["inputs"], records["outputs"], records["program"])
    program = ids[:, layout.program_start:layout.program_end]
    end = layout.program_start + tokens.program_length(program)
    pos = xp.arange(ids.shape[1])[None]
    # Real tokens: through the program's `}`, and (execution order) the outputs after its slots;
    # the PADs filling the slots are inputs only, never targets.
    valid = (pos < end[:, None]) | (pos >= layout.program_end)
    if loss_on == "all":
        loss_mask = valid & (pos >= 1)
    else:
        loss_mask = (pos > layout.program_start) & (pos < end[:, None])
    return {"tokens": ids, "loss_mask": loss_mask, "valid": valid,
            "length": xp.asarray(records["length"]).astype(np.int32)}
