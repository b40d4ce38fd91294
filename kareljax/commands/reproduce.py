"""The whole pipeline for one config: `kareljax reproduce` (data, training, evaluation, collection,
probe scan, report).

    kareljax reproduce --config configs/tiny.py [--workdir runs/tiny] [--config.train.num_steps=400]

Each stage is the library call of the command of the same name (`kareljax.reproduce`), run in
order in one run directory; run again, it continues where it stopped. The probe baseline, step 0,
is the untrained model reading the reference programs. The config's `probe` section sets what is
collected and how it is scanned. The report ends up in <workdir>/report/report.md.
"""
from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--config", required=True,
                        help="a config file or preset name; override with --config.X.Y=VALUE")
    parser.add_argument("--workdir", default=None, help="default: runs/<config name>")


def _say(message: str) -> None:
    print(f"[reproduce] {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from kareljax import config_files, reproduce
    from kareljax.errors import KareljaxError
    from kareljax.train import loop

    config = config_files.load(args.config, args.config_overrides)
    name = os.path.splitext(os.path.basename(config_files.resolve(args.config)))[0]
    workdir = args.workdir or os.path.join("runs", name)
    try:
        done = reproduce.run(config, workdir,
                             on_stage=lambda stage, s: _say(f"{stage} ({s:.0f} s so far)"))
    except (KareljaxError, loop.NonFiniteLossError) as e:
        status = 2 if isinstance(e, KareljaxError) else 1
        print(f"kareljax {e.stage}: {e}", file=sys.stderr)
        _say(f"{e.stage} stopped (exit {status}; the reason is above); once it is dealt with, "
             "the same command continues from here")
        return status
    train = done["train"]
    print(f"trained {train.step} steps in {workdir}{loop.summary_text(train.metrics)}")
    print(f"test: {done['eval']['correct']:.1%} correct (step {done['eval']['step']})")
    print(f"collected steps {done['collect']['steps']} ({done['collect']['new']} new) under "
          f"{workdir}/collect")
    if done["scan"] is None:
        _say(f"scan: {workdir}/results.jsonl is newer than every collection; kept")
    elif not done["scan"]["probes"]:
        _say(f"scan: no checkpoint could be probed (steps {done['scan']['skipped_steps']} "
             "skipped, each with its reason above)")
        return 1
    else:
        print(f"probed {done['scan']['probes']} probes of {done['scan']['checkpoints']} "
              f"checkpoints: {done['scan']['results']}")
    for note in done["report"]["notes"]:
        print(f"kareljax report: note: {note}", file=sys.stderr)
    _say(f"done in {done['seconds']:.0f} s: {done['report']['report']}")
    return 0
