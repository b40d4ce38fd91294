"""The whole pipeline for one config in one run directory (what `kareljax reproduce` runs):
training, evaluation on the test split, collection, the probe scan and the report.

    summary = kareljax.reproduce.run(config_files.load("configs/quick.py"), "runs/quick")

Run again, it continues where it stopped: training resumes from its newest checkpoint,
checkpoints already collected are kept, a scan newer than every collection is kept (and a rerun
scan reuses the rows of checkpoints it scanned already). What is collected and how it is scanned
is the config's `probe` section (kareljax.probe.options).
"""
from __future__ import annotations

import os
import time
from typing import Callable

import ml_collections

STAGES = ("train", "eval", "collect", "scan", "report")


def scan_is_current(workdir: str) -> bool:
    """Whether results.jsonl is newer than every collection (a finished scan of them)."""
    from kareljax import storage
    from kareljax.probe import scan_run, store

    results = os.path.join(os.fspath(workdir), scan_run.RESULTS_JSONL)
    steps = store.collected_steps(workdir)
    if not storage.exists(results) or not steps:
        return False
    newest = max(storage.mtime(os.path.join(store.step_dir(workdir, s), store.INDEX))
                 for s in steps)
    return storage.mtime(results) > newest


def run(config: ml_collections.ConfigDict, workdir: str,
        on_stage: Callable[[str, float], None] = lambda stage, seconds: None,
        progress: bool = True) -> dict:
    """Runs every stage of STAGES in order (`on_stage(stage, seconds so far)` before each);
    returns {stage: its result, seconds} (`scan`: None when a current scan was kept; no `report`
    when no checkpoint could be probed). A stage's error
    (KareljaxError, loop.NonFiniteLossError) propagates with `.stage` set to its name."""
    from kareljax.eval import eval_run
    from kareljax.probe import collect_run, options, report, scan_run
    from kareljax.train import loop

    probe = options.with_overrides(config, []).probe
    stages = {
        "train": lambda: loop.train(config, workdir, progress_bar=progress),
        "eval": lambda: eval_run.run(workdir, split="test", progress=progress),
        "collect": lambda: collect_run.run(workdir, options.collect_options(probe, steps="all"),
                                           progress=progress),
        "scan": lambda: None if scan_is_current(workdir) else scan_run.run(
            workdir, options.scan_options(probe), progress=progress),
        "report": lambda: report.write_report(workdir),
    }
    start, results = time.perf_counter(), {}
    for stage in STAGES:
        on_stage(stage, time.perf_counter() - start)
        try:
            results[stage] = stages[stage]()
        except Exception as e:
            e.stage = stage
            raise
        if stage == "scan" and results["scan"] is not None and not results["scan"]["probes"]:
            break                                   # nothing to report; the reasons were said
    results["seconds"] = time.perf_counter() - start
    return results
