"""Train the LM of a config in a run directory, resuming from its checkpoints: `kareljax train`.

    kareljax train --config configs/tiny.py --workdir runs/tiny [--config.train.num_steps=50 ...]

The workdir receives config.json, metrics.jsonl (one JSON line per log step), tensorboard/ and
checkpoints/ (permanent every train.checkpoint_every steps, rolling every train.keep_latest_every).
Running the same command again continues from the newest checkpoint. The dataset is built first if
it is missing (train.data_source=dataset). Multi-host: run the same command on every host with
KARELJAX_DISTRIBUTED=1, or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID set.
Exit status: 0 done, 1 stopped on a NaN/Inf loss, 2 a config problem or checkpoints that do not
read back (named), 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--config", required=True,
                        help="a config file (configs/tiny.py) or a preset name (tiny); override "
                             "values with --config.SECTION.NAME=VALUE")
    parser.add_argument("--workdir", required=True,
                        help="the run directory (created; resumed if it has checkpoints)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from kareljax import config_files
    from kareljax.train import loop

    config = config_files.load(args.config, args.config_overrides)
    try:
        result = loop.train(config, args.workdir, progress_bar=not args.no_progress)
    except loop.NonFiniteLossError as e:
        print(f"kareljax train: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:           # the run saved the step it stopped at
        print(f"\nkareljax train: {loop.interrupted_note(args.workdir)}", file=sys.stderr)
        return 130
    print(f"trained {result.step} steps in {args.workdir}{loop.summary_text(result.metrics)}")
    return 0
