"""Collect what the probes need from a run's checkpoints: `kareljax collect`.

    kareljax collect --workdir runs/NAME [--steps all] [--splits test,val,train]
                     [--config.probe.collect.train_limit=1000 ...]

For every chosen checkpoint (`all`: every kept checkpoint plus step 0, the untrained model, the
probes' baseline) and split: the decoded programs, the hidden state producing each program token
(mean over layers, or per layer with --per-layer), the shown examples' traces under the original
and the alternative semantics, and the accuracy; written to <workdir>/collect/step_<S>/. What to
collect is the run's `probe.collect` section (configs/README.md), overridable here.
"""
from __future__ import annotations

import argparse

from kareljax.commands import int_at_least

# Flags kept as short forms of --config.probe.collect.NAME.
_SHORT_FORMS = {"train_limit": "--train-limit", "alts": "--alts", "per_layer": "--per-layer",
                "forced_baseline": "--forced-baseline", "batch_size": "--batch-size"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--workdir", required=True, help="a training run directory")
    parser.add_argument("--steps", default="all",
                        help="'all' (every checkpoint and step 0), 'latest', or steps like 0,500")
    parser.add_argument("--splits", default="test,val,train")
    parser.add_argument("--limit", type=int_at_least(1), default=None,
                        help="at most N specs of every split")
    parser.add_argument("--forced", action="store_true",
                        help="feed the reference programs (forced decoding) instead of decoding")
    parser.add_argument("--overwrite", action="store_true",
                        help="collect again steps that are already collected")
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)  # enables overrides
    short = parser.add_argument_group("short forms of --config.probe.collect.NAME=VALUE")
    short.add_argument("--train-limit", type=int_at_least(1), default=None,
                       help="specs of the train split to collect (docs/spec.md §8: 50,000)")
    short.add_argument("--alts", default=None,
                       help="alternative semantics traced besides the original (docs/spec.md §3)")
    short.add_argument("--per-layer", action="store_true", default=None,
                       help="keep every layer's state")
    short.add_argument("--forced-baseline", action="store_true", default=None,
                       help="step 0 (the untrained model) reads the reference programs (the "
                            "default; its own programs are degenerate)")
    short.add_argument("--batch-size", type=int_at_least(1), default=None)


def run(args: argparse.Namespace) -> int:
    from kareljax.probe import collect_run, options

    overrides = [f"probe.collect.{name}={getattr(args, name)}" for name in _SHORT_FORMS
                 if getattr(args, name) is not None] + list(args.config_overrides)
    probe = options.run_probe(args.workdir, overrides)
    done = collect_run.run(args.workdir, options.collect_options(
        probe, steps=args.steps, splits=args.splits, limit=args.limit, forced=args.forced,
        overwrite=args.overwrite))
    print(f"collected steps {done['steps']} ({done['new']} new) under {args.workdir}/collect, "
          f"on {done['devices']} devices of {done['processes']} process"
          + "es" * (done['processes'] > 1))
    return 0
