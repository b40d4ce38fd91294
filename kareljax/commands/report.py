"""Summarise a probed run in figures and a markdown report: `kareljax report`.

    kareljax report --workdir runs/NAME [--out DIR]

Reads <workdir>/results.jsonl (from `kareljax scan`; required), metrics.jsonl, config.json and the
test collections under collect/step_*/ (generation accuracy per checkpoint), and writes into
<workdir>/report/ (or --out): progress.png (generation accuracy and semantic content vs training
step, the three training phases shaded, the step-0 baseline dashed), orig_vs_alt.png (original vs
alternative semantics per offset and depth at the last checkpoint, and their difference),
correlation.png (semantic content vs generation accuracy with the least-squares line and R²),
layers.png (only with per-layer probes) and report.md (the numbers in tables, Table 1 form beside
the paper's). Prints a JSON summary (strict JSON: an undefined R² is null). Missing optional inputs
skip what needs them, with a note.
"""
from __future__ import annotations

import argparse
import math
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="a run directory with results.jsonl")
    parser.add_argument("--out", default=None,
                        help="where to write the figures and report.md (default: <workdir>/report)")


def run(args: argparse.Namespace) -> int:
    import json
    from kareljax.probe import report

    summary = report.write_report(args.workdir, getattr(args, "out", None))
    for note in summary["notes"]:
        print(f"kareljax report: note: {note}", file=sys.stderr)
    keys = ("report", "figures", "probes", "checkpoints", "table1", "last_step", "r2",
            "final_generation")
    print(json.dumps(_undefined_as_null({k: summary[k] for k in keys}), allow_nan=False))
    return 0


def _undefined_as_null(value):
    """`value` with every NaN or infinite float (an R² with no line to fit) replaced by None, so
    that strict JSON parsers (jq, JavaScript) read the summary."""
    if isinstance(value, dict):
        return {k: _undefined_as_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_undefined_as_null(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
