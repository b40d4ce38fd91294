"""Run Karel programs on worlds: `kareljax karel run`.

Reads records in the golden files' JSON-lines format ({"code", "examples": [{"input"}, ...]},
gzipped when the name ends with .gz) and writes them back with each example's output, output_exact
and status; a record whose program or worlds are malformed gets an "error" field instead.
"""
from __future__ import annotations

import argparse
import sys
import time

from kareljax.commands import int_at_least


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="karel_command", metavar="ACTION", required=True)
    run_parser = actions.add_parser("run", help="run every record's program on its inputs",
                                    description=__doc__)
    run_parser.add_argument("--input", required=True, help="records to run (.jsonl or .jsonl.gz)")
    run_parser.add_argument("--output", required=True, help="where to write them (.jsonl[.gz])")
    run_parser.add_argument("--engine", choices=("jax", "reference"), default="jax",
                            help="the batched JAX interpreter (default) or the Python reference")
    run_parser.add_argument("--max-steps", type=int_at_least(0), default=None,
                            help="step budget per example (default: "
                                 "kareljax.karel.reference.DEFAULT_MAX_STEPS)")


def run(args: argparse.Namespace) -> int:
    from kareljax.karel import records, reference

    max_steps = reference.DEFAULT_MAX_STEPS if args.max_steps is None else args.max_steps
    start = time.perf_counter()
    try:
        inputs = records.read_records(args.input)
    except OSError as e:
        print(f"kareljax karel run: {e}", file=sys.stderr)
        return 2
    outputs = records.run_records(inputs, args.engine, max_steps, progress=True)
    records.write_records(args.output, outputs)
    counts = records.summary(outputs)
    print(f"{counts['records']} records, {counts['examples']} examples, {counts['errors']} errors, "
          f"{counts['timeouts']} timeouts, {time.perf_counter() - start:.2f} s "
          f"({args.engine}, max {max_steps} steps)", file=sys.stderr)
    return 0
