"""A run directory's probe scan: every collected checkpoint probed, rows cached per checkpoint,
results.jsonl and results.csv written (what `kareljax scan` and `kareljax reproduce` run).

    summary = scan_run.run("runs/quick", options.scan_options("cpu", []))

Checkpoints whose collections are damaged, incomplete, linked to a moved run or without probe
samples are skipped with their reason and repair; the others are scanned, enough checkpoints at a
time for every device to take whole inputs (`checkpoints_per_pass`). Each checkpoint's rows
are kept under <workdir>/scan_cache/<digest of the options>/, so a rerun with the same options
only trains the probes of checkpoints collected since (an interrupted scan resumes).
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import sys
import time

from tqdm import tqdm

from kareljax.config_files import ConfigError
from kareljax.errors import KareljaxError
from kareljax import storage
from kareljax.probe import scan, store

CACHE_DIR = "scan_cache"   # <workdir>/scan_cache/<options digest>/step_XXXXXXXX.jsonl
# Part of the digest: raised when the same options give other results (2: probe keys per probe
# index, not per memory chunk; 3: rows carry train_acc and train_acc_rise, and example -1 is one
# output per shown example), so rows cached by older code are not mixed with new ones.
RESULTS_VERSION = 3
RESULTS_JSONL, RESULTS_CSV = "results.jsonl", "results.csv"


def _say(message: str) -> None:
    """A line on stderr that leaves a progress bar intact."""
    tqdm.write(f"kareljax scan: {message}", file=sys.stderr)


def options_digest(options: scan.ScanOptions) -> str:
    """A short digest of every scan option and RESULTS_VERSION: cached rows are reused only under
    the same options and probe code."""
    text = json.dumps({**dataclasses.asdict(options), "results_version": RESULTS_VERSION},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def read_cached(cache: str, workdir: str, step: int) -> list[dict] | None:
    """The rows scanned earlier for `step` under the same options, unless the step was collected
    again since (or the file is unreadable): then None."""
    path = os.path.join(cache, f"step_{step:08d}.jsonl")
    index = os.path.join(store.step_dir(workdir, step), store.INDEX)
    if not storage.exists(path) or storage.mtime(path) < storage.mtime(index):
        return None
    try:
        return [json.loads(line) for line in storage.read_text(path).splitlines()]
    except (OSError, ValueError):
        return None


def write_cached(cache: str, step: int, rows: list[dict]) -> None:
    storage.makedirs(cache)
    with storage.write_whole(os.path.join(cache, f"step_{step:08d}.jsonl")) as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


def capped_samples_note(rows: list[dict]) -> str | None:
    """A line saying which splits' limits (max_train_samples, max_eval_samples) left aligned
    samples unused, or None when every probe saw all of them."""
    from kareljax.probe.report_summaries import sample_counts
    option = {"train": "max_train_samples", "val": "max_eval_samples", "test": "max_eval_samples"}
    limited = [f"{split} {c['used'][1]:,} of up to {c['found']:,} "
               f"(--config.probe.scan.{option[split]})"
               for split, c in sample_counts(rows).items() if c["found"]]
    if not limited:
        return None
    return ("kareljax scan: the probes used a subsample of the aligned samples of some "
            "checkpoints: " + "; ".join(limited) + "; raise the limit to use them all")


def _damaged(workdir: str, step: int, error: Exception) -> str:
    return (f"step {step} skipped: {error}; `kareljax collect --workdir {workdir} --steps {step} "
            "--overwrite` collects it again")


def scannable_steps(workdir: str) -> tuple[list[int], list[int]]:
    """(the steps with a complete, readable collection; the steps skipped, each named on stderr
    with its repair). KareljaxError when there is nothing to scan."""
    steps, incomplete, skipped = [], [], []
    for step in store.collected_steps(workdir):
        try:
            missing = store.missing_splits(store.step_dir(workdir, step), scan.SPLITS)
        except store.CollectionReadError as e:
            _say(_damaged(workdir, step, e))
            skipped.append(step)
            continue
        (incomplete if missing else steps).append(step)
    for step, target in store.broken_links(workdir).items():
        _say(f"step {step} skipped: {store.broken_link_message(workdir, step, target)}")
        skipped.append(step)
    if incomplete:      # a collection stopped between splits (or one still being written)
        _say(f"steps {incomplete} skipped: their collections lack a split of "
             f"{list(scan.SPLITS)}; `kareljax collect --workdir {workdir}` completes them")
    if not steps:
        what = "no complete, readable collection" if incomplete or skipped else "nothing collected"
        raise KareljaxError(f"{what} under {workdir}/collect",
                            hint=f"run `kareljax collect --workdir {workdir}` first")
    return steps, skipped


def checkpoints_per_pass(layers: int) -> int:
    """Checkpoints whose probes train together: enough inputs (each checkpoint gives 1 + layers,
    the mean and each layer's view) for every device of the scan to take whole ones; their
    inputs are held until they have trained (the scan also trains early once they reach
    `memory_gib`)."""
    from kareljax.probe import fit
    return max(1, -(-fit.probe_mesh().size // (1 + layers)))


def run(workdir: str, options: scan.ScanOptions, progress: bool = True) -> dict:
    """Scans every collected checkpoint of `workdir` and writes results.csv and results.jsonl
    (each whole or not at all; the JSON lines last, so a results.jsonl newer than the
    collections is a finished scan). Returns {probes, checkpoints, skipped_steps, seconds,
    results} (probes 0, and no files written, when no checkpoint could be probed)."""
    from kareljax.train import distributed
    distributed.maybe_initialize()   # several processes: one scan over all their devices
    primary = scan.primary()         # process 0 writes the cache and the results
    steps, skipped = scannable_steps(workdir)
    first = store.read_index(store.step_dir(workdir, steps[0]))
    num_sem = 1 + len(first["alts"] if options.alts is None else options.alts)
    layers = store.layer_count(store.step_dir(workdir, steps[0]), first)
    per_step = scan.probes_per_step(options, num_sem, first["conditions"], layers)
    start, reused, done = time.perf_counter(), [], {}
    cache = os.path.join(workdir, CACHE_DIR, options_digest(options))
    batch_size = checkpoints_per_pass(layers)
    with tqdm(total=len(steps) * per_step, desc="probes", unit="probe", file=sys.stderr,
              disable=not progress or not primary) as bar:
        pending: list = []           # (step, prepared jobs) waiting to train together

        def train_pending() -> None:
            for (step, _), rows in zip(pending, scan.train_steps([p for _, p in pending],
                                                                 options, bar.update)):
                if primary:
                    write_cached(cache, step, rows)
                done[step] = rows
            pending.clear()

        for step in steps:
            cached = read_cached(cache, workdir, step)
            if not scan.process_zero_decides(cached is None):   # all processes fit the same
                reused.append(step)
                bar.update(len(cached or ()))
                done[step] = cached or []
                continue
            try:
                pending.append((step, scan.prepare_step(store.step_dir(workdir, step), options)))
            except (scan.NoSamplesError, store.CollectionReadError) as e:
                _say(f"step {step} skipped: {e}" if isinstance(e, scan.NoSamplesError)
                     else _damaged(workdir, step, e))
                skipped.append(step)
                bar.total -= per_step                 # the bar still ends at 100 %
                bar.refresh()
                continue
            except ValueError as e:  # options the collection cannot serve; earlier steps stay
                raise ConfigError(f"step {step}: {e}") from e
            held = sum(scan.held_bytes(p) for _, p in pending)
            if len(pending) >= batch_size or held > options.memory_gib * 2 ** 30:
                train_pending()
        if pending:
            train_pending()
    rows = [row for step in steps for row in done.get(step, [])]
    if note := capped_samples_note(rows):
        print(note, file=sys.stderr)
    if reused:
        _say(f"reused the results of steps {reused} from {cache}")
    summary = {"probes": len(rows), "checkpoints": len(set(steps) - set(skipped)),
               "skipped_steps": skipped, "seconds": round(time.perf_counter() - start, 1),
               "results": os.path.join(workdir, RESULTS_JSONL)}
    if rows and primary:
        write_results(workdir, rows)
    return summary


def write_results(workdir: str, rows: list[dict]) -> None:
    """results.csv (every key of every row as a column), then results.jsonl."""
    with storage.write_whole(os.path.join(workdir, RESULTS_CSV), newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)),
                                restval="")
        writer.writeheader()
        writer.writerows(rows)
    with storage.write_whole(os.path.join(workdir, RESULTS_JSONL)) as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
