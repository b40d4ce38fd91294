"""Decoding and scoring a split: the model's programs for every spec, and their accuracy.

`evaluate(model, data, records)` decodes fixed-size batches (the last one padded, so the decode loop
compiles once per batch size) and scores them (`accuracy`).
"""
from __future__ import annotations

from typing import Callable

import ml_collections
import numpy as np

from kareljax.data import dataset_config, grammar as grammar_lib
from kareljax.data.batches import example_tokens
from kareljax.eval import accuracy, diversity
from kareljax.model import decode


def program_grammar(data: ml_collections.ConfigDict) -> grammar_lib.Grammar:
    """The decoding constraint (docs/spec.md §7): straight-line presets `run{` 1..14 actions `}` (or as
    many as the layout holds); with conditionals, the full grammar without loops."""
    layout = dataset_config.layout(data)
    exclude = ("pick_marker", "put_marker") if data.no_markers else ()
    if dataset_config.program_options(data).has_conditionals:
        return grammar_lib.Grammar(layout.max_program_tokens, max_depth=data.max_length,
                                   exclude=exclude + ("while", "repeat"))
    return grammar_lib.straight_line(layout.max_program_tokens - 2, exclude=exclude)


def _pad(records: dict, size: int) -> dict:
    n = len(records["length"])
    return {k: np.concatenate([v, np.repeat(v[:1], size - n, 0)]) if size > n else v
            for k, v in records.items()}


def decode_records(model, data: ml_collections.ConfigDict, records: dict, batch_size: int = 256,
                   forced: bool = False, recompute: bool = False,
                   progress: Callable[[int], object] | None = None) -> np.ndarray:
    """Program ids [N, max_program_tokens] (starting with `run{`) decoded for every record
    (`recompute`: without the KV cache, for comparison); `progress(n)` after each batch of n."""
    layout = dataset_config.layout(data)
    grammar = program_grammar(data)
    n = len(records["length"])
    out = []
    for start in range(0, n, batch_size):
        batch = _pad({k: v[start:start + batch_size] for k, v in records.items()}, batch_size)
        prompts = example_tokens(layout, batch["inputs"], batch["outputs"],
                                 batch["program"])[:, :layout.prompt_length]
        forced_tokens = None
        if forced:
            ref = np.asarray(batch["program"])[:, 1:]
            forced_tokens = np.where(ref == 0, -1, ref)[:, :grammar.max_tokens - 1]
        decoder = decode.greedy_decode_recompute if recompute else decode.greedy_decode
        tokens = decoder(model, prompts, grammar, forced=forced_tokens)
        out.append(np.asarray(decode.with_opening(tokens))[:min(batch_size, n - start)])
        if progress is not None:
            progress(len(out[-1]))
    ids = np.concatenate(out)
    width = layout.max_program_tokens
    return ids[:, :width] if ids.shape[1] >= width else np.pad(ids, [(0, 0), (0, width - ids.shape[1])])


def evaluate(model, data: ml_collections.ConfigDict, records: dict, batch_size: int = 256,
             forced: bool = False, progress: Callable[[int], object] | None = None
             ) -> tuple[dict, dict]:
    """(summary, per-program results) of the model's programs on `records` (`progress`: see
    `decode_records`); for an execution-order run (issue 31's control), the model's outputs
    (`execution_order.evaluate`)."""
    if dataset_config.layout(data).execution:
        from kareljax.eval import execution_order
        return execution_order.evaluate(model, data, records, batch_size, forced, progress)
    programs = decode_records(model, data, records, batch_size, forced, progress=progress)
    results = accuracy.score(programs, records, data.n_shown, data.max_steps)
    results["program"] = programs
    summary = accuracy.summarize(results)
    summary["distinct"] = diversity.distinct_fraction(programs)
    summary["reference_distinct"] = diversity.distinct_fraction(records["program"])
    return summary, results
