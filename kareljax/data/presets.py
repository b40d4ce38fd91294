"""The dataset presets (docs/spec.md §4) as ml_collections ConfigDicts: the single source of their values.

`configs/<name>.py` files put one of these under `config.data`; the TFDS builder `karel` lists them
as its builder configs. Every field is documented in `base()`; `dataset_config.validate` checks a
config before any work is done.
"""
from __future__ import annotations

import ml_collections

from kareljax.data.program_options import BASE_WEIGHTS


def base() -> ml_collections.ConfigDict:
    """Every data option, at the icml preset's values."""
    c = ml_collections.ConfigDict()
    c.preset = "icml"               # the name datasets are stored under (plus a digest if changed)
    c.seed = 0                      # every world and program derives from it (docs/spec.md §4 [D])
    c.world_height = 8              # rows, border ring included (interior = 6)
    c.world_width = 8
    c.num_examples = 10             # worlds per program
    c.n_shown = 5                   # examples 0..n_shown-1 are shown to the LM, the rest held out
    # Programs (docs/spec.md §4): lengths, statement weights and the original generator's options.
    c.min_length = 1
    c.max_length = 10
    c.uniform = False
    c.no_conditionals = True
    c.no_markers = False
    c.no_noops = False
    c.base_weights = tuple(BASE_WEIGHTS)   # move, turn_left, turn_right, pick, put, if, ifelse
    # Split sizes: exactly n // (number of lengths) programs of each length.
    c.num_train = 1_000_000
    c.num_val = 10_000
    c.num_test = 10_000
    # Lengths the LM trains on (the original's --lengths_to_filter, inverted); () = all.
    c.train_lengths = (6, 7, 8, 9, 10)
    # Token layout (docs/spec.md §5, docs/tokens.md).
    c.max_program_tokens = 16       # `run{` + up to 14 actions + `}`
    c.row_separators = False
    # 'synthesis': inputs and outputs, then the program (the paper's task); 'execution': inputs,
    # the program, then the outputs (issue 31's positive control, docs/tokens.md).
    c.order = "synthesis"
    c.max_steps = 1000              # interpreter step budget (docs/spec.md §3)
    c.data_dir = "data"             # where TFDS datasets are written
    return c


def icml() -> ml_collections.ConfigDict:
    """`karel_noloops_nocond`: straight-line programs of 1-10 actions; the LM trains on 6-10."""
    return base()


def colm() -> ml_collections.ConfigDict:
    """`karel_15only_uniform_noloops_nocond_nomarks`: 15 moves and turns, uniform, with a real
    train split (the original's README produced an empty one)."""
    c = base()
    c.preset = "colm"
    c.min_length = c.max_length = 15
    c.uniform = True
    c.no_markers = True
    c.train_lengths = ()
    c.max_program_tokens = 17
    return c


def cond() -> ml_collections.ConfigDict:
    """Like icml, with if/ifelse (beyond the paper's experiments). Lengths count conditional tokens
    too (the generator's statement budget)."""
    c = base()
    c.preset = "cond"
    c.no_conditionals = False
    c.max_program_tokens = max_program_tokens(c.max_length, conditionals=True)
    return c


def _cpu(c: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
    """A CPU-sized variant: 4x4 interior and 20,000 / 1,000 / 1,000 programs."""
    c.preset = name
    c.world_height = c.world_width = 6
    c.num_train, c.num_val, c.num_test = 20_000, 1_000, 1_000
    return c


def icml_cpu() -> ml_collections.ConfigDict:
    """icml on a 4x4 interior, 20,000 / 1,000 / 1,000 programs."""
    return _cpu(icml(), "icml_cpu")


def colm_cpu() -> ml_collections.ConfigDict:
    """colm on a 4x4 interior, 20,000 / 1,000 / 1,000 programs."""
    return _cpu(colm(), "colm_cpu")


def cond_cpu() -> ml_collections.ConfigDict:
    """cond on a 4x4 interior, 20,000 / 1,000 / 1,000 programs."""
    return _cpu(cond(), "cond_cpu")


PRESETS = {f.__name__: f for f in (icml, colm, cond, icml_cpu, colm_cpu, cond_cpu)}


def max_program_tokens(max_length: int, conditionals: bool) -> int:
    """Program tokens the longest program of `max_length` can take, `run{` and `}` included.

    Straight-line: one token per action. With conditionals the worst case is a chain of nested
    `if not cond { ... }` (4 tokens per unit of length) around one action.
    """
    return 2 + (4 * max_length - 3 if conditionals and max_length >= 2 else max_length)
