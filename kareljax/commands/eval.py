"""Decode a split with a trained checkpoint and score it: `kareljax eval`.

    kareljax eval --workdir runs/NAME [--step S] [--split test] [--limit N]

Prints the JSON summary `kareljax.eval.eval_run` documents and writes it to
<workdir>/eval/step_<S>_<split>.json, with one JSON line per program in
<workdir>/eval/step_<S>_<split>.jsonl.
"""
from __future__ import annotations

import argparse
import json

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
    from kareljax.eval import eval_run

    print(json.dumps(eval_run.run(args.workdir, args.step, args.split, args.limit,
                                  args.batch_size, args.forced)))
    return 0
