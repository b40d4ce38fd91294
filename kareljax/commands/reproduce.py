"""The whole pipeline for one config: `kareljax reproduce` (data, training, evaluation, collection,
probe scan, report).

    kareljax reproduce --config configs/tiny.py [--workdir runs/tiny] [--config.train.num_steps=400]

Each stage is the command of the same name, run in order in one run directory; run again, it
continues where it stopped: training resumes from its newest checkpoint, checkpoints already
collected are skipped, a scan newer than every collection is kept (and a rerun scan reuses the
rows of checkpoints it already scanned). The probe baseline, step 0, is the untrained model reading
the reference programs (`collect --forced-baseline`): its own programs are degenerate. The config's
optional `probe` section sets the collection and scan sizes (`train_limit`, `alts`, `seeds`, `offsets`,
`profile`, `fit_steps`). The report ends up in <workdir>/report/report.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--config", required=True,
                        help="a config file or preset name; override with --config.X.Y=VALUE")
    parser.add_argument("--workdir", default=None, help="default: runs/<config name>")


def _scan_is_current(workdir: str) -> bool:
    from kareljax.probe import store

    results = os.path.join(workdir, "results.jsonl")
    if not os.path.exists(results):
        return False
    newest = max(os.path.getmtime(os.path.join(store.step_dir(workdir, s), store.INDEX))
                 for s in store.collected_steps(workdir))
    return os.path.getmtime(results) > newest


def run(args: argparse.Namespace) -> int:
    from kareljax import cli, config_files

    config = config_files.load(args.config, args.config_overrides)
    name = os.path.splitext(os.path.basename(config_files.resolve(args.config)))[0]
    workdir = args.workdir or os.path.join("runs", name)
    from kareljax.probe import options as probe_options
    probe = probe_options.probe_of(config)
    overrides = [f"--config.{o}" for o in args.config_overrides]
    stages = [
        ("train", ["train", "--config", args.config, "--workdir", workdir, *overrides]),
        ("eval", ["eval", "--workdir", workdir, "--split", "test"]),
        ("collect", ["collect", "--workdir", workdir, "--steps", "all", "--forced-baseline",
                     "--train-limit", str(probe.train_limit), "--alts", probe.alts]),
        ("scan", ["scan", "--workdir", workdir, "--profile", probe.profile,
                  *(f"--config.{o}" for o in probe_options.scan_overrides(probe))]),
        ("report", ["report", "--workdir", workdir]),
    ]
    start = time.perf_counter()
    for stage, argv in stages:
        if stage == "scan" and _scan_is_current(workdir):
            print(f"[reproduce] scan: {workdir}/results.jsonl is newer than every collection; "
                  "kept", file=sys.stderr)
            continue
        print(f"[reproduce] {stage} ({time.perf_counter() - start:.0f} s so far)", file=sys.stderr)
        status = cli.main(argv)
        if status:
            print(f"[reproduce] {stage} stopped (exit {status}; the reason is above); once it "
                  "is dealt with, the same command continues from here", file=sys.stderr)
            return status
    print(f"[reproduce] done in {time.perf_counter() - start:.0f} s: "
          f"{os.path.join(workdir, 'report', 'report.md')}", file=sys.stderr)
    return 0
