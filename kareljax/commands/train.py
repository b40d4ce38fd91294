"""Train the LM of a config in a run directory, resuming from its checkpoints: `kareljax train`.

    kareljax train --config configs/tiny.py --workdir runs/tiny [--config.train.num_steps=50 ...]

The workdir receives config.json, metrics.jsonl (one JSON line per log step), tensorboard/ and
checkpoints/ (permanent every train.checkpoint_every steps, rolling every train.keep_latest_every).
Running the same command again continues from the newest checkpoint. The dataset is built first if
it is missing (train.data_source=dataset). Multi-host: run the same command on every host with
KARELJAX_DISTRIBUTED=1, or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID set.
Exit status: 0 done, 1 stopped on a NaN/Inf loss, 2 a config problem or checkpoints that do not
read back (named).
"""
from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--config", required=True,
                        help="a config file (configs/tiny.py) or a preset name (tiny); override "
                             "values with --config.SECTION.NAME=VALUE")
    parser.add_argument("--workdir", required=True,
                        help="the run directory (created; resumed if it has checkpoints)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _fail(message: str, status: int = 2) -> int:
    print(f"kareljax train: {message}", file=sys.stderr)
    return status


def _interrupted(workdir: str) -> str:
    """What a Ctrl-C leaves: the newest checkpoint, from which the same command resumes."""
    from kareljax.train import load

    try:
        steps = load.checkpoint_steps(workdir)
    except Exception:                   # noqa: BLE001  (only for the message)
        steps = []
    if not steps:
        return "interrupted before the first checkpoint: the same command starts again"
    return (f"interrupted; the newest checkpoint is step {steps[-1]} (in "
            f"{os.path.join(workdir, 'checkpoints')}): the same command resumes from it")


def run(args: argparse.Namespace) -> int:
    from kareljax import config_files
    from kareljax.config_files import ConfigError
    from kareljax.train import loop, train_config
    from kareljax.train.checkpoints import CheckpointReadError

    config = config_files.load(args.config, args.config_overrides)
    train_config.validate(config)
    if os.path.exists(args.workdir) and not os.path.isdir(args.workdir):
        raise ConfigError(f"--workdir {args.workdir} is a file, not a run directory")
    try:
        result = loop.train(config, args.workdir, progress_bar=not args.no_progress)
    except CheckpointReadError as e:
        e.hint = (f"to train this run again from step 0, move {e.directory} elsewhere "
                  "(kareljax deletes no checkpoint)")
        raise
    except loop.NonFiniteLossError as e:
        return _fail(str(e), status=1)
    except KeyboardInterrupt:           # the checkpoint being written was finished on the way out
        print(file=sys.stderr)          # past the progress bar's line
        return _fail(_interrupted(args.workdir), status=130)
    line = result.metrics
    summary = f", loss {line['loss']:.4f}" if "loss" in line else ""
    if "tokens_per_s" in line:
        summary += f", {line['tokens_per_s']:,.0f} tokens/s"
    print(f"trained {result.step} steps in {args.workdir}{summary}")
    return 0
