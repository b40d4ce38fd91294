"""Decode a split with a trained checkpoint and score it: `kareljax eval`.

    kareljax eval --workdir runs/NAME [--step S] [--split test] [--limit N]

Prints a JSON summary (correct: outputs right on the 5 shown examples; correct_gen: on all 10;
exact: final states equal the reference's; each also by reference length; mean generated vs
reference length; `distinct`, distinct programs over specs (1/N while the model babbles one
program for every spec), beside `reference_distinct`, the references'; the floors: `noop_floor`,
what `pick_marker()` alone scores, and `best_constant`, the best single program of 1-3 actions)
and writes it to <workdir>/eval/step_<S>_<split>.json, with
one JSON line per program in <workdir>/eval/step_<S>_<split>.jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from kareljax.commands import int_at_least


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="a training run directory")
    parser.add_argument("--step", type=int_at_least(0), default=None,
                        help="the checkpoint to evaluate (default: the newest)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--limit", type=int_at_least(1), default=None,
                        help="only the first N specs of the split")
    parser.add_argument("--batch-size", type=int_at_least(1), default=256)
    parser.add_argument("--forced", action="store_true",
                        help="score the reference programs fed by forced decoding (a check)")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm
    from kareljax.data import pipeline, tokens
    from kareljax.eval import baselines, evaluate
    from kareljax.karel import printer
    from kareljax.train import load

    config = load.run_config(args.workdir)
    step, model = load.load_model(args.workdir, args.step)
    reader = pipeline.DatasetReader(config.data, args.split)
    count = len(reader) if args.limit is None else min(args.limit, len(reader))
    records = reader.read(np.arange(count))
    with tqdm(total=count, desc=f"decoding {args.split} (step {step})", unit="spec",
              file=sys.stderr) as bar:
        summary, results = evaluate.evaluate(model, config.data, records, args.batch_size,
                                             args.forced, progress=bar.update)
    summary = {"step": step, "split": args.split, **summary,
               **baselines.constant_baselines(records, config.data)}
    out_dir = os.path.join(args.workdir, "eval")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"step_{step}_{args.split}.jsonl")
    with open(path, "w") as f:
        for i in range(count):
            program = tokens.decode_program(results["program"][i])
            f.write(json.dumps({
                "spec": i, "code": printer.to_text(program),
                "reference": printer.to_text(tokens.decode_program(records["program"][i])),
                "reference_length": int(results["reference_length"][i]),
                **{k: bool(results[k][i]) for k in ("correct", "correct_gen", "exact")}}) + "\n")
    summary["per_program"] = path
    with open(os.path.join(out_dir, f"step_{step}_{args.split}.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary))
    return 0
