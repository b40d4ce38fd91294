"""Compile every stage of a run ahead of time for TPU slices and GPUs: `kareljax plan`.

    kareljax plan --config configs/icml.py --target v4-8 --target h100 [--json] [--config.x=y]

For each target (TPU slices v4-8, v4-16, v4-32, v5e-1, v5e-4, v5e-8, v5e-16, v5p-8, v6e-1, v6e-8;
GPUs h100, h100x8, h200, a100, a100x8; cpu, this host) it builds the target's devices without
having them, the config's mesh over them, and compiles the train step, the decode loop, the
collection's forward pass and the probe scan's fit (at the config's scan settings and at the
paper's) at their real shapes, dtypes and shardings. It prints per device and stage the memory
XLA needs against the device's, whether it fits and otherwise the setting that does, FLOPs per
call and the roofline time; then the whole run's hours per target at a stated utilisation.
Needs the `aot` extra (`pip install -e .[aot]`) for TPU and GPU targets. Exit status: 0 every
stage fits on every target, 1 something does not, 2 bad input.
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="a config file or preset name")
    parser.add_argument("--target", action="append", required=True,
                        help="a TPU slice, GPU host or cpu (repeat for several)")
    parser.add_argument("--stage", action="append", default=None,
                        help="only these stages (train_step, decode, collect, scan, scan_paper)")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="the eval and collect batch (their --batch-size)")
    parser.add_argument("--mfu", type=float, default=0.4,
                        help="utilisation assumed for the run's hours (default 0.4)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")


def run(args: argparse.Namespace) -> int:
    import json

    from kareljax import config_files
    from kareljax.config_files import ConfigError
    from kareljax.plan import report, run as plan_run, stages, targets
    from kareljax.train import train_config

    for name in args.target:
        targets.resolve(name)
    chosen = tuple(args.stage or stages.STAGES)
    unknown = [s for s in chosen if s not in stages.STAGES]
    if unknown:
        raise ConfigError(f"--stage: unknown {unknown}; the stages are {stages.STAGES}")
    if not 0 < args.mfu <= 1 or args.batch_size < 1:
        raise ConfigError("--mfu must be in (0, 1] and --batch-size at least 1")
    config = config_files.load(args.config, args.config_overrides)
    train_config.validate(config)
    rows = plan_run.run(config, args.target, stages=chosen, batch=args.batch_size,
                        progress=None if args.json else
                        lambda line: print(line, file=sys.stderr, flush=True))
    summary = plan_run.totals(config, rows, args.mfu)
    if args.json:
        per_target = {s["target"]: s for s in summary}
        json.dump([{**r, "run": per_target[r["target"]]} for r in rows], sys.stdout, indent=1,
                  default=str)
        print()
    else:
        print(report.table(rows, summary))
    misfits = [r for r in rows if not r["fits"]]
    for r in misfits:
        fix = r.get("setting")
        print(f"kareljax plan: {r['stage']} does not fit on {r['target']}"
              + (f"; it fits with {fix}" if fix else "; no setting tried makes it fit")
              + (f" ({r['error']})" if r.get("error") and not fix else ""), file=sys.stderr)
    return 1 if misfits else 0
