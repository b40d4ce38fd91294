"""A checkpoint of a run decoded on a split and scored (what `kareljax eval` and `kareljax
reproduce` run), written to <workdir>/eval/step_<S>_<split>.json (the summary) and .jsonl (one
line per program).

    summary = eval_run.run("runs/quick", split="test")

The summary: correct (outputs right on the 5 shown examples), correct_gen (on all 10), exact
(final states equal the reference's), each also by reference length; mean generated and
reference lengths; `distinct`, distinct programs over specs (1/N while the model babbles one
program for every spec), beside `reference_distinct`; the floors `noop_floor` (what
`pick_marker()` alone scores) and `best_constant` (the best single program of 1-3 actions).
"""
from __future__ import annotations

import json
import os
import sys

import jax

from kareljax import storage


def run(workdir: str, step: int | None = None, split: str = "test", limit: int | None = None,
        batch_size: int = 256, forced: bool = False, progress: bool = True) -> dict:
    """Evaluates checkpoint `step` (None: the newest) of the run in `workdir` on the first
    `limit` specs of `split` (None: all); writes and returns the summary (its `per_program`
    names the JSON lines file)."""
    import numpy as np
    from tqdm import tqdm
    from kareljax.data import pipeline
    from kareljax.eval import baselines, evaluate
    from kareljax.train import load

    from kareljax.model import data_parallel
    from kareljax.train import distributed

    distributed.maybe_initialize()       # several processes: one evaluation over all devices
    config = load.run_config(workdir)
    step, model = load.load_model(workdir, step)
    if len(jax.devices()) > 1:           # decoding data-parallel over every device
        model = data_parallel.replicate(model, data_parallel.batch_mesh())
    reader = pipeline.DatasetReader(config.data, split)
    count = len(reader) if limit is None else min(limit, len(reader))
    records = reader.read(np.arange(count))
    with tqdm(total=count, desc=f"decoding {split} (step {step})", unit="spec",
              file=sys.stderr, disable=not progress) as bar:
        summary, results = evaluate.evaluate(model, config.data, records, batch_size, forced,
                                             progress=bar.update)
    summary = {"step": step, "split": split, **summary,
               **baselines.constant_baselines(records, config.data)}
    stem = os.path.join(os.fspath(workdir), "eval", f"step_{step}_{split}")
    summary["per_program"] = stem + ".jsonl"
    if jax.process_index() == 0:         # one process writes
        storage.makedirs(os.path.dirname(stem))
        _write_programs(summary["per_program"], records, results, count)
        with storage.write_whole(stem + ".json") as f:
            json.dump(summary, f, indent=1)
    return summary


def _write_programs(path: str, records: dict, results: dict, count: int) -> None:
    """One JSON line per spec: the generated and the reference program, and its scores."""
    from kareljax.data import tokens
    from kareljax.karel import printer

    with storage.write_whole(path) as f:
        for i in range(count):
            f.write(json.dumps({
                "spec": i, "code": printer.to_text(tokens.decode_program(results["program"][i])),
                "reference": printer.to_text(tokens.decode_program(records["program"][i])),
                "reference_length": int(results["reference_length"][i]),
                **{k: bool(results[k][i]) for k in ("correct", "correct_gen", "exact")}}) + "\n")
