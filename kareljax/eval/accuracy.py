"""The paper's accuracy measures (docs/spec.md §7) for decoded programs against a split's specs.

* `correct`: the program's outputs match all shown examples (as the LM sees them: rendered
  interiors, markers under the hero hidden);
* `correct_gen`: all 10 examples match (the held-out ones too);
* `exact`: all 10 final states equal the reference program's exactly (marker counts included).

`score` returns per-program arrays; `summarize` gives the rates overall and by reference length,
plus mean generated vs reference lengths.
"""
from __future__ import annotations

import numpy as np

from kareljax.data import generate, tokens as T
from kareljax.eval import execution, length_table
from kareljax.karel.world import World


def score(program_ids, records: dict, n_shown: int, max_steps: int) -> dict:
    """Per-program results of program ids [B, P] (starting with `run{`) on stored records
    {program, length, inputs, outputs} [B, ...] (`example_codec`)."""
    program_ids = np.asarray(program_ids)
    inputs = generate.worlds_from_glyphs(records["inputs"])
    both = np.concatenate([_fit(program_ids, records["program"].shape[1]),
                           np.asarray(records["program"], np.int64)])
    doubled = World(*(np.concatenate([np.asarray(x)] * 2) for x in (
        inputs.walls, inputs.markers, inputs.row, inputs.col, inputs.facing)))
    final, ok = execution.run_tokens(both, doubled, max_steps)
    n = len(program_ids)
    gen, ref = (World(*(np.asarray(x)[s] for x in (final.walls, final.markers, final.row,
                                                    final.col, final.facing)))
                for s in (slice(0, n), slice(n, 2 * n)))
    seen = np.asarray(generate.glyphs(gen))
    matches = (seen == np.asarray(records["outputs"])).all(axis=(-2, -1)) & ok[:n, None]
    exact = ((gen.markers == ref.markers).all(axis=(-2, -1)) & (gen.row == ref.row)
             & (gen.col == ref.col) & (gen.facing == ref.facing) & ok[:n, None])
    return {"correct": matches[:, :n_shown].all(1), "correct_gen": matches.all(1),
            "exact": exact.all(1), "parsed": ok[:n],
            "generated_length": T.num_actions(program_ids),
            "reference_length": np.asarray(records["length"], np.int32)}


def _fit(ids: np.ndarray, width: int) -> np.ndarray:
    """Program ids padded (or cut, where only PAD is cut) to `width` columns."""
    if ids.shape[1] < width:
        return np.pad(ids, [(0, 0), (0, width - ids.shape[1])])
    cut = ids[:, width:]
    if (cut != T.PAD).any():
        raise ValueError(f"programs longer than {width} tokens")
    return ids[:, :width]


def summarize(results: dict) -> dict:
    """Rates overall and by reference length (`length_table`, with the mean generated lengths there
    too); mean generated length (all, and correct programs) vs the references'."""
    lengths = results["reference_length"]
    out = {name: float(np.mean(results[name])) for name in ("correct", "correct_gen", "exact")}
    out["programs"] = int(len(lengths))
    out["mean_generated_length"] = float(np.mean(results["generated_length"]))
    correct = results["correct"]
    out["mean_generated_length_correct"] = (
        float(np.mean(results["generated_length"][correct])) if correct.any() else None)
    out["mean_reference_length"] = float(np.mean(lengths))
    out["by_length"] = length_table.by_reference_length(results)
    return out
