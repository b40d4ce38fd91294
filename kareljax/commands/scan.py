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
probes of checkpoints collected since (an interrupted scan resumes). Options (with --config.NAME=VALUE): those of
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


CACHE_DIR = "scan_cache"   # <workdir>/scan_cache/<options digest>/step_XXXXXXXX.jsonl
# Part of the digest: raised when the same options give other results (2: probe keys per probe
# index, not per memory chunk; 3: rows carry train_acc and train_acc_rise, and example -1 is one
# output per shown example), so rows cached by older code are not mixed with new ones.
RESULTS_VERSION = 3


def options_digest(options) -> str:
    """A short digest of every scan option and RESULTS_VERSION: cached rows are reused only under
    the same options and probe code."""
    import dataclasses
    import hashlib
    import json
    text = json.dumps({**dataclasses.asdict(options), "results_version": RESULTS_VERSION},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def read_cached(cache: str, workdir: str, step: int) -> list[dict] | None:
    """The rows scanned earlier for `step` under the same options, unless the step was collected
    again since (or the file is unreadable): then None."""
    import json
    import os
    from kareljax.probe import store
    path = os.path.join(cache, f"step_{step:08d}.jsonl")
    index = os.path.join(store.step_dir(workdir, step), store.INDEX)
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(index):
        return None
    try:
        with open(path) as f:
            return [json.loads(line) for line in f]
    except (OSError, ValueError):
        return None


def write_cached(cache: str, step: int, rows: list[dict]) -> None:
    import json
    import os
    from kareljax.whole_files import write_whole
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"step_{step:08d}.jsonl")
    with write_whole(path) as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


def capped_samples_note(rows: list[dict]) -> str | None:
    """A line saying which splits' limits (max_train_samples, max_eval_samples) left aligned
    samples unused, or None when every probe saw all of them."""
    from kareljax.probe.report_summaries import sample_counts
    option = {"train": "max_train_samples", "val": "max_eval_samples", "test": "max_eval_samples"}
    limited = [f"{split} {c['used'][1]:,} of up to {c['found']:,} (--config.{option[split]})"
               for split, c in sample_counts(rows).items() if c["found"]]
    if not limited:
        return None
    return ("kareljax scan: the probes used a subsample of the aligned samples of some "
            "checkpoints: " + "; ".join(limited) + "; raise the limit to use them all")


def _skip_damaged(workdir: str, step: int, error: Exception, skipped: list, bar=None) -> None:
    """Notes a step whose collection does not read back (the others are scanned) and how to
    collect it again."""
    message = (f"kareljax scan: step {step} skipped: {error}; `kareljax collect --workdir "
               f"{workdir} --steps {step} --overwrite` collects it again")
    if bar is None:
        print(message, file=sys.stderr)
    else:
        bar.write(message, file=sys.stderr)
    skipped.append(step)


def _drop_from_total(bar, probes: int) -> None:
    """Takes a skipped step's untrained probes out of the bar, so it still ends at 100 %."""
    bar.total -= probes
    bar.refresh()


def run(args: argparse.Namespace) -> int:
    import csv
    import json
    import os
    import time
    from tqdm import tqdm
    from kareljax.config_files import ConfigError
    from kareljax.errors import KareljaxError
    from kareljax.probe import scan, store
    from kareljax.whole_files import write_whole

    options = scan_options(args.profile, args.config_overrides)
    steps, incomplete, skipped = [], [], []
    for step in store.collected_steps(args.workdir):
        try:
            missing = store.missing_splits(store.step_dir(args.workdir, step), scan.SPLITS)
        except store.CollectionReadError as e:
            _skip_damaged(args.workdir, step, e, skipped)
            continue
        (incomplete if missing else steps).append(step)
    for step, target in store.broken_links(args.workdir).items():
        print(f"kareljax scan: step {step} skipped: "
              f"{store.broken_link_message(args.workdir, step, target)}", file=sys.stderr)
        skipped.append(step)
    if incomplete:      # a collection stopped between splits (or one still being written)
        print(f"kareljax scan: steps {incomplete} skipped: their collections lack a split of "
              f"{list(scan.SPLITS)}; `kareljax collect --workdir {args.workdir}` completes them",
              file=sys.stderr)
    if not steps:
        what = "no complete, readable collection" if incomplete or skipped else "nothing collected"
        raise KareljaxError(f"{what} under {args.workdir}/collect",
                            hint=f"run `kareljax collect --workdir {args.workdir}` first")
    first = store.read_index(store.step_dir(args.workdir, steps[0]))
    num_sem = 1 + len(first["alts"] if options.alts is None else options.alts)
    layers = store.layer_count(store.step_dir(args.workdir, steps[0]), first)
    per_step = scan.probes_per_step(options, num_sem, first.get("conditions", False), layers)
    total = len(steps) * per_step
    rows, start, reused = [], time.perf_counter(), []
    cache = os.path.join(args.workdir, CACHE_DIR, options_digest(options))
    with tqdm(total=total, desc="probes", unit="probe", file=sys.stderr) as bar:
        for step in steps:
            cached = read_cached(cache, args.workdir, step)
            if cached is None:
                done_before = bar.n
                try:
                    cached = scan.scan_step(store.step_dir(args.workdir, step), options,
                                            bar.update)
                except scan.NoSamplesError as e:
                    bar.write(f"kareljax scan: step {step} skipped: {e}", file=sys.stderr)
                    skipped.append(step)
                    _drop_from_total(bar, per_step - (bar.n - done_before))
                    continue
                except store.CollectionReadError as e:
                    _skip_damaged(args.workdir, step, e, skipped, bar)
                    _drop_from_total(bar, per_step - (bar.n - done_before))
                    continue
                except ValueError as e:  # a collection the options cannot use; earlier steps stay cached
                    raise ConfigError(f"step {step}: {e}") from e
                write_cached(cache, step, cached)
            else:
                reused.append(step)
                bar.update(len(cached))
            rows += cached
    note = capped_samples_note(rows)
    if note:
        print(note, file=sys.stderr)
    if reused:
        print(f"kareljax scan: reused the results of steps {reused} from {cache}",
              file=sys.stderr)
    seconds = time.perf_counter() - start
    if not rows:
        print(f"kareljax scan: no checkpoint could be probed (steps {skipped} skipped, each "
              "with its reason above)", file=sys.stderr)
        return 1
    # Each file whole or not at all (reproduce takes a results.jsonl newer than the collections
    # as a finished scan): the CSV first, the JSON lines last.
    with write_whole(os.path.join(args.workdir, "results.csv"), newline="") as f:
        fields = list(dict.fromkeys(key for row in rows for key in row))  # rows cached by
        writer = csv.DictWriter(f, fieldnames=fields, restval="")       # older versions differ
        writer.writeheader()
        writer.writerows(rows)
    with write_whole(os.path.join(args.workdir, "results.jsonl")) as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    print(json.dumps({"probes": len(rows), "checkpoints": len(set(steps) - set(skipped)),
                      "skipped_steps": skipped, "seconds": round(seconds, 1),
                      "results": os.path.join(args.workdir, "results.jsonl")}))
    return 0
