"""A run killed with SIGKILL, or stopped with Ctrl-C (SIGINT), and started again ends bitwise equal
to one that never stopped."""
from __future__ import annotations

import json
import signal
import time

import jax
import numpy as np
import pytest

from tests.train.conftest import STEPS, finish, load, restore, start_train


def complete_lines(workdir) -> list[dict]:
    """The metrics lines written so far (a line being written is left out)."""
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines() if line]


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
def test_stopped_then_resumed_is_bitwise_identical(runs, tmp_path, data_dir, compile_cache, stop):
    workdir = tmp_path / "stopped"
    process = start_train(workdir, data_dir, devices=1, cache=compile_cache)
    deadline = time.monotonic() + 180
    while max((r["step"] for r in complete_lines(workdir) if "loss" in r), default=0) < 9:
        assert process.poll() is None, f"the run ended before it was stopped:\n{finish(process)}"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)
    process.send_signal(stop)
    out, _ = process.communicate(timeout=120)
    if stop == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:       # Ctrl-C: a message naming the checkpoint to resume from, no traceback
        assert process.returncode == 130, out[-3000:]
        assert "Traceback" not in out
        assert "kareljax train: interrupted; the newest checkpoint is step " in out
        assert "the same command resumes from it" in out
    lines = complete_lines(workdir)
    killed_at = max(r["step"] for r in lines if "loss" in r)
    assert killed_at < STEPS and not any(r.get("event") == "finished" for r in lines)
    saved = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and saved[-1] < STEPS

    finish(start_train(workdir, data_dir, devices=1, cache=compile_cache))
    lines = complete_lines(workdir)
    resumed = [r for r in lines if r.get("event") == "resumed"]
    assert len(resumed) == 1 and resumed[0]["step"] <= killed_at

    config = load(data_dir)
    a, b = restore(runs["one"], config), restore(workdir, config)
    assert a.step == b.step == STEPS and a.data == b.data
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)),
                 a.state, b.state)        # parameters, optimizer moments and step, bit for bit
    # The steps after the resume saw the same batches: the same losses, exactly.
    uninterrupted = {r["step"]: r["loss"] for r in complete_lines(runs["one"]) if "loss" in r}
    after = {r["step"]: r["loss"] for r in lines[lines.index(resumed[0]):] if "loss" in r}
    assert sorted(after) == list(range(resumed[0]["step"] + 1, STEPS + 1))
    assert all(after[s] == uninterrupted[s] for s in after)
