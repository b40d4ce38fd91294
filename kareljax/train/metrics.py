"""Training metrics: one JSON line per event in `<workdir>/metrics.jsonl`, the same scalars as
TensorBoard event files in `<workdir>/tensorboard/` (tensorboardX: no TensorFlow), and a tqdm bar.

Only process 0 writes; other processes get a writer that does nothing.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

from tqdm import tqdm

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


def read_metrics(workdir: str | os.PathLike) -> list[dict]:
    """Every JSON line of a run's metrics file."""
    path = os.path.join(os.fspath(workdir), METRICS_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class MetricsWriter:
    """`write(step, {name: float})` appends a JSON line and TensorBoard scalars; `event(kind, **)`
    records a non-scalar event (start, resume, stop); `progress(step, **postfix)` moves the bar."""

    def __init__(self, workdir: str | os.PathLike, *, total_steps: int, initial_step: int = 0,
                 enabled: bool = True, progress_bar: bool = True):
        self.enabled = enabled
        self._file = self._tb = self._bar = None
        if not enabled:
            return
        workdir = os.fspath(workdir)
        os.makedirs(workdir, exist_ok=True)
        self._file = open(os.path.join(workdir, METRICS_FILE), "a", buffering=1)
        from tensorboardX import SummaryWriter
        self._tb = SummaryWriter(os.path.join(workdir, TENSORBOARD_DIR), flush_secs=30)
        if progress_bar:
            self._bar = tqdm(total=total_steps, initial=initial_step, unit="step",
                             file=sys.stderr, dynamic_ncols=True)

    def _line(self, record: dict) -> None:
        self._file.write(json.dumps(record, allow_nan=True) + "\n")

    def write(self, step: int, scalars: dict) -> None:
        if not self.enabled:
            return
        values = {k: float(v) for k, v in scalars.items()}
        self._line({"step": step, "time": time.time(), **values})
        for name, value in values.items():
            if math.isfinite(value):
                self._tb.add_scalar(f"train/{name}", value, step)

    def event(self, kind: str, step: int, **fields) -> None:
        if self.enabled:
            self._line({"event": kind, "step": step, "time": time.time(), **fields})
            self.message(f"{kind} at step {step}" + "".join(f", {k} {v}" for k, v in
                                                              fields.items()))

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def progress(self, step: int, **postfix) -> None:
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()
        if self._file is not None:
            self._file.close()
        self._file = self._tb = self._bar = None
