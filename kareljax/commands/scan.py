"""Train probes on every collected checkpoint: `kareljax scan`.

    kareljax scan --workdir runs/NAME [--config.fit.steps=2000 --config.seeds=3 ...]

Reads <workdir>/collect/step_*/ (from `kareljax collect`) and trains every (checkpoint x semantics x
offset x depth x task x seed) probe; writes <workdir>/results.jsonl and results.csv, one row per
probe with its key, val_acc and test_acc. Tasks: the six state tasks of docs/spec.md §8 at every offset,
plus `branch` (the first evaluation of each if/ifelse/while, offset 0) where the programs have
conditionals; on request, the state in the robot's starting frame (`turns`, `ego_start_position`)
and the starting pose itself (`initial_facing`, `initial_position`), e.g.
"--config.tasks=('facing','turns','ego_start_position')". Each checkpoint's rows are also kept under
<workdir>/scan_cache/<digest of the options>/, so a rerun with the same options only trains the
probes of checkpoints collected since (an interrupted scan resumes; `kareljax.probe.scan_run`). Options (with --config.NAME=VALUE): those of
`kareljax.probe.scan.ScanOptions` (depths, tasks, offsets, seeds, alts, example (-1: one probe
output per shown example, each with that example's labels, as the original's --all_labels), correct_only,
statements, max_train_samples, max_eval_samples, memory_gib) and fit.* (steps, batch_size, lr, weight_decay,
decay_rate, decay_periods, eval_every). The default `cpu` profile trains briefly (steps 60,
batch 64) on at most 20,000 train and 1,024 val and test samples per checkpoint; `--profile paper`
uses docs/spec.md §9's 10,000 steps of 1,024 on up to 100,000 train samples. A seeded subsample is drawn
where a split has more (each row records `<split>_samples`, used, and `<split>_available`, found,
and the scan says when a limit left samples unused).
"""
from __future__ import annotations

import argparse
import sys

from kareljax.probe.options import PROFILES, scan_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="a run directory with collections")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)  # enables overrides


def run(args: argparse.Namespace) -> int:
    import json
    from kareljax.probe import scan_run

    summary = scan_run.run(args.workdir, scan_options(args.profile, args.config_overrides))
    if not summary["probes"]:
        print(f"kareljax scan: no checkpoint could be probed (steps {summary['skipped_steps']} "
              "skipped, each with its reason above)", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0
