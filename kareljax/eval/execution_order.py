"""Evaluating an execution-order run (issue 31's positive control): the model reads the shown
inputs and the reference program, and writes the outputs.

An example is right when the model writes every cell of its 5 shown output grids. Two ways to
read that, equal by construction: greedy decoding feeds the model its own cells, teacher forcing
the true ones; if every cell's best glyph given the true cells before it is the true cell, greedy
decoding never leaves the true sequence, and if greedy decoding writes every cell right, the
cells it was fed were the true ones. So `correct` is computed with one forward pass (teacher
forcing) and equals greedy decoding's all-right (up to a floating-point near-tie between two
glyphs, where the cached decoding and the full forward pass may round differently; `kareljax eval`
reports both). Greedy decoding (a KV cache: the prefix up to `Output0` prefilled, then every
position of the output region fed in turn, its fixed tokens `Output{i}`, `|` given and each cell
the model's best cell glyph, `# . ^ > v < 1..9`) gives the share of grids and cells right, which
teacher forcing overstates. One compilation per batch shape: a batch is padded to `batch_size`.

Per spec (`score`):

* `correct` (= `output_correct`): all `n_shown` output grids right;
* `correct_gen`: the held-out examples' grids right too (a second sequence shows examples
  n_shown.. as Input0..; with fewer than n_shown held out it wraps round to the first ones);
* `exact`: the same as `correct_gen` (the outputs are the rendered grids; there is no other state
  the model writes);
* `teacher_forced_cell_accuracy`: the share of shown output cells right given the true cells;
* with `greedy`: `greedy_correct` (all right as greedily decoded; = `correct`), `grid_accuracy`,
  `cell_accuracy` (the share of shown output grids and cells greedily decoded right);
* `copy`: the shown outputs equal their inputs (the floor: a model that copies its inputs);
* `program`, `generated_length`, `reference_length`, `parsed`: the reference program (given,
  so generated = reference), as `evaluate.evaluate` returns them.

`evaluate(model, data, records, batch_size, forced, progress)` has `evaluate.evaluate`'s
signature and returns its (summary, results) pair with the keys above added.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from kareljax.data import dataset_config, tokens as T
from kareljax.data.batches import example_tokens
from kareljax.eval import accuracy, diversity
from kareljax.model.transformer import init_cache

CELL_OK = np.zeros(T.VOCAB_SIZE, bool)
CELL_OK[T.WALL:T.WALL + len(T.CELL_GLYPHS)] = True


def output_region(layout: T.Layout) -> np.ndarray:
    """int32 [max_length - program_end]: the token fixed at each position of the output region
    (`Output{i}`, `|`), -1 at the cells the model writes."""
    if not layout.execution:
        raise ValueError("an output region exists in execution order only (layout.order is "
                         f"{layout.order!r})")
    fixed = layout.sequence_template()[layout.program_end:].copy()
    fixed[layout.cell_positions()[:, 1].reshape(-1) - layout.program_end] = -1
    return fixed


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _greedy_outputs(graphdef, params, prefix, fixed):
    model = nnx.merge(graphdef, params)
    batch, start = prefix.shape
    n = fixed.shape[0]
    cell_ok = jnp.asarray(CELL_OK)
    cache = init_cache(model, batch, start + n)
    last, cache = model.prefill(prefix, cache, jnp.broadcast_to(jnp.arange(start), prefix.shape))

    def body(t, carry):
        last, cache, out = carry
        best = jnp.argmax(jnp.where(cell_ok, last, -jnp.inf), axis=-1).astype(jnp.int32)
        token = jnp.where(fixed[t] >= 0, fixed[t], best)
        logits, cache = model.decode(token[:, None], cache, start + t,
                                     jnp.full((batch, 1), start + t))
        return logits[:, 0], cache, out.at[:, t].set(token)

    out = jnp.zeros((batch, n), jnp.int32)
    return jax.lax.fori_loop(0, n, body, (last, cache, out))[2]


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _teacher_forced(graphdef, params, ids):
    logits = nnx.merge(graphdef, params)(ids)
    return jnp.argmax(jnp.where(jnp.asarray(CELL_OK), logits, -jnp.inf), -1).astype(jnp.int32)


def _glyphs(layout: T.Layout, ids: np.ndarray) -> np.ndarray:
    """Output glyph grids [B, n_shown, h, w] (0..14, `example_codec`'s) of whole sequences."""
    return (np.asarray(ids)[:, layout.cell_positions()[:, 1]] - T.WALL).astype(np.int32)


def predict_outputs(model, layout: T.Layout, records: dict) -> np.ndarray:
    """Greedily decoded output glyph grids [B, n_shown, h, w] of records {inputs, outputs,
    program} (their shown examples and reference programs)."""
    ids = example_tokens(layout, records["inputs"], records["outputs"], records["program"])
    graphdef, params = nnx.split(model)
    region = np.asarray(_greedy_outputs(graphdef, params,
                                        jnp.asarray(ids[:, :layout.program_end], jnp.int32),
                                        jnp.asarray(output_region(layout))))
    return _glyphs(layout, np.concatenate([ids[:, :layout.program_end], region], 1))


def teacher_forced_outputs(model, layout: T.Layout, records: dict) -> np.ndarray:
    """Output glyph grids [B, n_shown, h, w], each cell the model's best cell glyph given every
    true token before it."""
    ids = example_tokens(layout, records["inputs"], records["outputs"], records["program"])
    graphdef, params = nnx.split(model)
    best = np.asarray(_teacher_forced(graphdef, params, jnp.asarray(ids, jnp.int32)))
    predicted = np.concatenate([np.zeros_like(best[:, :1]), best[:, :-1]], 1)  # from t - 1
    return _glyphs(layout, predicted)


def held_out_records(records: dict, n_shown: int) -> dict | None:
    """The records with the held-out examples (n_shown.., wrapping round) in the shown slots;
    None when there are none."""
    total = np.asarray(records["inputs"]).shape[1]
    if total <= n_shown:
        return None
    order = (n_shown + np.arange(total)) % total
    return {**records, **{k: np.asarray(records[k])[:, order] for k in ("inputs", "outputs")}}


def score(model, layout: T.Layout, records: dict, greedy: bool = True) -> dict:
    """Per-spec results (see the module docstring) of one batch of records; `greedy=False`
    leaves out the greedy decoding (what a collection does: `correct` needs none)."""
    shown = np.asarray(records["outputs"])[:, :layout.n_shown].astype(np.int32)
    inputs = np.asarray(records["inputs"])[:, :layout.n_shown].astype(np.int32)
    forced = teacher_forced_outputs(model, layout, records) == shown
    correct = forced.all((1, 2, 3))
    held = held_out_records(records, layout.n_shown)
    correct_gen = correct if held is None else correct & (
        teacher_forced_outputs(model, layout, held)
        == np.asarray(held["outputs"])[:, :layout.n_shown]).all((1, 2, 3))
    length = np.asarray(records["length"], np.int32)
    out = {"correct": correct, "output_correct": correct, "correct_gen": correct_gen,
           "exact": correct_gen, "teacher_forced_cell_accuracy": forced.mean((1, 2, 3)),
           "copy": (inputs == shown).all((1, 2, 3)), "parsed": np.ones(len(length), bool),
           "program": np.asarray(records["program"]), "generated_length": length,
           "reference_length": length}
    if greedy:
        cells = predict_outputs(model, layout, records) == shown
        out.update({"greedy_correct": cells.all((1, 2, 3)),
                    "grid_accuracy": cells.all((-2, -1)).mean(1),
                    "cell_accuracy": cells.mean((1, 2, 3))})
    return out


def _pad(records: dict, size: int) -> dict:
    n = len(records["length"])
    return {k: np.concatenate([v, np.repeat(v[:1], size - n, 0)]) if size > n else v
            for k, v in records.items()}


def score_records(model, layout: T.Layout, records: dict, batch_size: int = 256,
                  progress: Callable[[int], object] | None = None) -> dict:
    """`score` over every record, in batches of `batch_size` (the last one padded)."""
    n = len(records["length"])
    parts = []
    for start in range(0, n, batch_size):
        batch = _pad({k: np.asarray(v)[start:start + batch_size] for k, v in records.items()},
                     batch_size)
        count = min(batch_size, n - start)
        parts.append({k: v[:count] for k, v in score(model, layout, batch).items()})
        if progress is not None:
            progress(count)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


SUMMARY_RATES = ("output_correct", "greedy_correct", "grid_accuracy", "cell_accuracy",
                 "teacher_forced_cell_accuracy")


def evaluate(model, data: ml_collections.ConfigDict, records: dict, batch_size: int = 256,
             forced: bool = False, progress: Callable[[int], object] | None = None
             ) -> tuple[dict, dict]:
    """(summary, per-spec results) of an execution-order model on `records`: `evaluate.evaluate`'s
    signature and keys (`correct` is the output accuracy; `forced` changes nothing, the program
    is always the reference), plus `output_correct`, `greedy_correct`, `grid_accuracy`,
    `cell_accuracy`, `teacher_forced_cell_accuracy`, `copy_floor` and `order`."""
    layout = dataset_config.layout(data)
    if not layout.execution:
        raise ValueError(f"data.order is {layout.order!r}: use kareljax.eval.evaluate")
    del forced
    results = score_records(model, layout, records, batch_size, progress)
    summary = accuracy.summarize(results)
    summary.update({name: float(np.mean(results[name])) for name in SUMMARY_RATES})
    summary["copy_floor"] = float(np.mean(results["copy"]))
    summary["distinct"] = summary["reference_distinct"] = diversity.distinct_fraction(
        records["program"])
    summary["order"] = "execution"
    return summary, results
