"""Checking a data config (`presets.base()` fields) and turning it into the objects that use it.

`validate` runs before any work: every problem raises `ConfigError` naming the option.
"""
from __future__ import annotations

import hashlib
import json

import ml_collections

from kareljax.config_files import ConfigError, require
from kareljax.data import presets, tokens
from kareljax.data.program_options import ProgramOptions, per_length_counts

SPLITS = ("train", "val", "test")


def program_options(data: ml_collections.ConfigDict) -> ProgramOptions:
    try:
        return ProgramOptions(min_length=data.min_length, max_length=data.max_length,
                              uniform=data.uniform, no_conditionals=data.no_conditionals,
                              no_markers=data.no_markers, no_noops=data.no_noops,
                              base_weights=tuple(data.base_weights))
    except ValueError as e:
        raise ConfigError(f"data.{e}") from None


def order(data: ml_collections.ConfigDict) -> str:
    """The example order (`tokens.ORDERS`); 'synthesis' for configs written before it existed."""
    return data.get("order", "synthesis")


def layout(data: ml_collections.ConfigDict) -> tokens.Layout:
    return tokens.Layout.for_world(data.world_height, data.world_width, n_shown=data.n_shown,
                                   row_separators=data.row_separators,
                                   max_program_tokens=data.max_program_tokens, order=order(data))


def split_size(data: ml_collections.ConfigDict, split: str) -> int:
    """Programs a split holds: its requested size rounded down to a multiple of the lengths."""
    if split not in SPLITS:
        raise ConfigError(f"split: unknown split {split!r}; the splits are {', '.join(SPLITS)}")
    n = data[f"num_{split}"]
    k = data.max_length - data.min_length + 1
    return n // k * k


def train_lengths(data: ml_collections.ConfigDict) -> tuple[int, ...]:
    """The lengths the LM trains on (all lengths when `train_lengths` is empty)."""
    return tuple(data.train_lengths) or tuple(range(data.min_length, data.max_length + 1))


def _require(ok: bool, option: str, message: str) -> None:
    require(ok, f"data.{option}", message)


def validate(data: ml_collections.ConfigDict) -> None:
    """Raises ConfigError naming the first option that cannot work."""
    _require(data.preset in presets.PRESETS or data.preset.isidentifier(), "preset",
             f"{data.preset!r} is not a usable name (letters, digits, _)")
    for side in ("world_height", "world_width"):
        _require(3 <= data[side] <= 127, side, f"must be 3..127 cells (border included), "
                 f"got {data[side]}")
    _require(1 <= data.num_examples <= tokens.NUM_EXAMPLES, "num_examples",
             f"must be 1..{tokens.NUM_EXAMPLES}, got {data.num_examples}")
    _require(1 <= data.n_shown <= data.num_examples, "n_shown",
             f"must be 1..num_examples ({data.num_examples}), got {data.n_shown}")
    _require(data.max_steps >= 1, "max_steps", f"must be >= 1, got {data.max_steps}")
    _require(order(data) in tokens.ORDERS, "order",
             f"must be one of {', '.join(tokens.ORDERS)}, got {order(data)!r}")
    options = program_options(data)
    if not data.no_conditionals and options.has_conditionals:
        _require(data.max_length >= 2, "max_length",
                 f"conditionals need a length of at least 2 (the token and a body), but "
                 f"max_length is {data.max_length}; set no_conditionals=True or raise it")
        _require(data.n_shown >= 2, "n_shown", "conditionals need at least 2 shown worlds "
                 f"(docs/spec.md §4), got {data.n_shown}; set no_conditionals=True or raise it")
    need = presets.max_program_tokens(data.max_length, options.has_conditionals)
    _require(data.max_program_tokens >= need, "max_program_tokens",
             f"programs of length {data.max_length} can take {need} tokens, but "
             f"max_program_tokens is {data.max_program_tokens}")
    lengths = options.lengths
    bad = [n for n in data.train_lengths if n not in lengths]
    _require(not bad, "train_lengths", f"{bad} outside min_length..max_length "
             f"({data.min_length}..{data.max_length})")
    for split in SPLITS:
        try:
            per_length_counts(data[f"num_{split}"], lengths)
        except ValueError as e:
            raise ConfigError(f"data.num_{split}: the {split} split would be empty or lack a "
                              f"length: {e}") from None
    try:
        layout(data)
    except ValueError as e:
        raise ConfigError(f"data: {e}") from None


def digest(data: ml_collections.ConfigDict) -> str:
    """8 hex digits identifying what a dataset holds (every field but `data_dir`; `order` only
    when it is not 'synthesis', so the datasets built before it existed keep their names, and
    an execution-order dataset never shares one with a synthesis dataset)."""
    fields = {k: v for k, v in data.to_dict().items() if k != "data_dir"}
    if fields.get("order", "synthesis") == "synthesis":
        fields.pop("order", None)
    fields["vocab"] = tokens.VOCAB_DIGEST
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=list).encode()).hexdigest()[:8]


def dataset_name(data: ml_collections.ConfigDict) -> str:
    """The TFDS builder config name: the preset's name, plus the digest when values differ from
    the preset's."""
    preset = presets.PRESETS.get(data.preset)
    if preset is not None:
        default = preset()
        default.data_dir = data.data_dir
        if digest(default) == digest(data):
            return data.preset
    return f"{data.preset}_{digest(data)}"
