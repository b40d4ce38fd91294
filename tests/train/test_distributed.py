"""Two processes on localhost (jax.distributed, one CPU device each) train together: the same
command, the environment naming the coordinator."""
from __future__ import annotations

import math
import socket

from kareljax.data import pipeline
from kareljax.train import distributed
from kareljax.train.metrics import read_metrics
from tests.train.conftest import finish, load, start_train


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_requested_by_the_environment():
    assert not distributed.requested({})
    assert distributed.requested({"KARELJAX_DISTRIBUTED": "1"})
    assert not distributed.requested({"KARELJAX_DISTRIBUTED": "0"})
    assert distributed.requested({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"})


def test_two_processes_train_together(tmp_path, data_dir, compile_cache):
    workdir, port = tmp_path / "run", free_port()
    processes = [
        start_train(workdir, data_dir, "train.num_steps=4", "train.checkpoint_every=4", devices=1,
                    cache=compile_cache, env={"JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
                         "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i)})
        for i in range(2)]
    outputs = [finish(p, timeout=300) for p in processes]
    assert "trained 4 steps" in outputs[0]
    lines = read_metrics(workdir)            # written by process 0 only
    started = [r for r in lines if r.get("event") == "started"]
    assert len(started) == 1 and started[0]["processes"] == 2 and started[0]["devices"] == 2
    steps = [r for r in lines if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all(math.isfinite(r["loss"]) for r in steps)
    # Each process fed its half of every 8-sequence batch: step 1 counted both halves' targets.
    halves = [next(iter(pipeline.batches(load(data_dir).data, batch_size=4, seed=0,
                                         shard_index=i, shard_count=2))) for i in range(2)]
    assert steps[0]["targets"] == sum(int(h["loss_mask"].sum()) for h in halves)
    assert (workdir / "checkpoints" / "4" / "state").is_dir()
