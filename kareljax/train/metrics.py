"""Training metrics: one JSON line per event in `<workdir>/metrics.jsonl`, the same scalars as
TensorBoard event files in `<workdir>/tensorboard/` (tensorboardX: no TensorFlow), and a tqdm bar.

Only process 0 writes; other processes get a writer that does nothing. On gs:// (no appends) the
lines are kept and the whole file is uploaded again every FLUSH_SECONDS, at every event and at
the end (tensorboardX writes its event files there itself).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

from tqdm import tqdm

from kareljax import storage

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
FLUSH_SECONDS = 30


class _StorageEventFile:
    """A TensorBoard event file on gs:// for tensorboardX, written through `kareljax.storage`:
    kept in memory and uploaded whole at each flush (tensorboardX's own gs:// writer uploads
    again when it is garbage-collected, which can be long after the run)."""

    def __init__(self, path: str):
        self.path, self._data, self._closed = path, bytearray(), False

    def write(self, data: bytes) -> None:
        self._data += data

    def flush(self) -> None:
        if not self._closed:
            storage.write_bytes(self.path, bytes(self._data))

    def close(self) -> None:
        self.flush()
        self._closed = True


class _StorageEventFiles:
    """tensorboardX's writer factory for gs:// (`record_writer.register_writer_factory`)."""

    def open(self, path: str) -> _StorageEventFile:
        return _StorageEventFile(path)

    def directory_check(self, path: str) -> None:
        pass                         # no folders on gs://


def _tensorboard(directory: str):
    from tensorboardX import SummaryWriter, record_writer
    record_writer.register_writer_factory("gs", _StorageEventFiles())
    return SummaryWriter(directory, flush_secs=FLUSH_SECONDS)


class JsonLinesLog:
    """Lines appended to a file: a line-buffered append locally; on gs://, every line kept and
    the whole file replaced at `flush()` (and at a write FLUSH_SECONDS after the last)."""

    def __init__(self, path: str):
        self.path = path
        self._remote = storage.is_remote(path)
        if self._remote:
            self._lines = storage.read_text(path).splitlines(True) if storage.exists(path) else []
            self._flushed = time.monotonic()
        else:
            self._file = open(path, "a", buffering=1)

    def write(self, line: str) -> None:
        if not self._remote:
            self._file.write(line)
            return
        self._lines.append(line)
        if time.monotonic() - self._flushed > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self._remote:
            storage.write_text(self.path, "".join(self._lines))
            self._flushed = time.monotonic()

    def close(self) -> None:
        self.flush()
        if not self._remote:
            self._file.close()


def read_metrics(workdir: str | os.PathLike) -> list[dict]:
    """Every JSON line of a run's metrics file."""
    path = os.path.join(os.fspath(workdir), METRICS_FILE)
    if not storage.exists(path):
        return []
    return [json.loads(line) for line in storage.read_text(path).splitlines() if line.strip()]


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
        storage.makedirs(workdir)
        self._file = JsonLinesLog(os.path.join(workdir, METRICS_FILE))
        self._tb = _tensorboard(os.path.join(workdir, TENSORBOARD_DIR))
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
            self._file.flush()
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
