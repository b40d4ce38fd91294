"""Train probes on every collected checkpoint: `kareljax scan`.

    kareljax scan --workdir runs/NAME [--profile paper] [--config.probe.scan.seeds=3 ...]

Reads <workdir>/collect/step_*/ (from `kareljax collect`) and trains every (checkpoint x semantics x
offset x depth x task x seed) probe; writes <workdir>/results.jsonl and results.csv, one row per
probe with its key, train_acc, val_acc and test_acc. How is the run's `probe.scan` section
(configs/README.md; `kareljax.probe.scan.ScanOptions` documents every option), with --profile's
budget (`cpu`: 60 steps of 64 on at most 20,000 train and 1,024 val and test samples per
checkpoint; `paper`: docs/spec.md §9's 10,000 steps of 1,024 on up to 100,000) and then the
overrides; `--config.fit.steps=100` is short for `--config.probe.scan.fit.steps=100`. Tasks: the
six state tasks of docs/spec.md §8 at every offset, plus `branch` where the programs have
conditionals, and on request the state in the robot's starting frame and the starting pose
("--config.probe.scan.tasks=('facing','turns','ego_start_position')"). Each checkpoint's rows are
kept under <workdir>/scan_cache/<digest of the options>/, so a rerun with the same options only
trains the probes of checkpoints collected since (an interrupted scan resumes).
"""
from __future__ import annotations

import argparse
import sys

from kareljax.probe.options import PROFILES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--workdir", required=True, help="a run directory with collections")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="the probes' budget instead of the run's (default: the run's)")
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)  # enables overrides


def run(args: argparse.Namespace) -> int:
    import json
    from kareljax.probe import options, scan_run

    probe = options.run_probe(args.workdir, options.scan_overrides(args.config_overrides),
                              args.profile)
    summary = scan_run.run(args.workdir, options.scan_options(probe))
    if not summary["probes"]:
        print(f"kareljax scan: no checkpoint could be probed (steps {summary['skipped_steps']} "
              "skipped, each with its reason above)", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0
