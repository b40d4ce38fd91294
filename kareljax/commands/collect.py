"""Collect what the probes need from a run's checkpoints: `kareljax collect`.

    kareljax collect --workdir runs/NAME [--steps all] [--splits test,val,train]

For every chosen checkpoint (`all`: every kept checkpoint plus step 0, the untrained model, the
probes' baseline) and split: the decoded programs, the hidden state producing each program token
(mean over layers, or per layer with --per-layer), the shown examples' traces under the original
and the alternative semantics, and the accuracy; written to <workdir>/collect/step_<S>/.
"""
from __future__ import annotations

import argparse

from kareljax.commands import int_at_least
from kareljax.probe.collect_run import DEFAULT_ALTS, DEFAULT_TRAIN_LIMIT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="a training run directory")
    parser.add_argument("--steps", default="all",
                        help="'all' (every checkpoint and step 0), 'latest', or steps like 0,500")
    parser.add_argument("--splits", default="test,val,train")
    parser.add_argument("--train-limit", type=int_at_least(1), default=DEFAULT_TRAIN_LIMIT,
                        help="specs of the train split to collect (docs/spec.md §8: the first 50,000)")
    parser.add_argument("--limit", type=int_at_least(1), default=None,
                        help="at most N specs of every split")
    parser.add_argument("--alts", default=DEFAULT_ALTS,
                        help="alternative semantics to trace besides the original (docs/spec.md §3)")
    parser.add_argument("--per-layer", action="store_true", help="keep every layer's state")
    parser.add_argument("--forced", action="store_true",
                        help="feed the reference programs (forced decoding) instead of decoding")
    parser.add_argument("--forced-baseline", action="store_true",
                        help="step 0 (the untrained model) reads the reference programs by forced "
                             "decoding: an untrained model's own programs are degenerate (often "
                             "one action each), leaving its probes no statements to align")
    parser.add_argument("--batch-size", type=int_at_least(1), default=256)
    parser.add_argument("--overwrite", action="store_true",
                        help="collect again steps that are already collected")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from kareljax.probe import collect_run

    fields = [f.name for f in dataclasses.fields(collect_run.CollectOptions)]
    options = collect_run.CollectOptions(**{name: getattr(args, name) for name in fields})
    done = collect_run.run(args.workdir, options)
    print(f"collected steps {done['steps']} ({done['new']} new) under {args.workdir}/collect")
    return 0
