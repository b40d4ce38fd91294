"""Shared pieces of the training tests: a small built dataset, the tiny test config, and runs of
`kareljax train` in subprocesses (each with its own XLA CPU device count)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kareljax import config_files
from tests.conftest import REPO

SMALL_DATA = ["data.num_train=2000", "data.num_val=100", "data.num_test=100"]
# The run most tests share: tiny model, 8 sequences a step, a metrics line every step, a rolling
# checkpoint every 4 steps and a permanent one every 8.
RUN = ["train.batch_size=8", "train.num_steps=16", "train.lr=0.003", "train.warmup_steps=4",
       "train.log_every=1", "train.keep_latest_every=4", "train.checkpoint_every=8"]
STEPS = 16


def overrides(data_dir, *extra: str) -> list[str]:
    return [*SMALL_DATA, f"data.data_dir={data_dir}", *RUN, *extra]


def load(data_dir, *extra: str):
    """The tiny config with the test dataset and run settings (plus `extra` overrides)."""
    return config_files.load("tiny", overrides(data_dir, *extra))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A built 2,000-program icml_cpu dataset (about 10 s)."""
    from kareljax.data import tfds_karel
    path = tmp_path_factory.mktemp("data")
    builder = tfds_karel.builder(config_files.load("icml_cpu", SMALL_DATA +
                                                   [f"data.data_dir={path}"]).data)
    builder.download_and_prepare()
    return path


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory):
    """A persistent compilation cache the subprocess runs share (same programs compile once)."""
    return tmp_path_factory.mktemp("jax_cache")


def cli_env(devices: int, cache=None, **extra: str) -> dict:
    """The environment of a subprocess run on `devices` XLA CPU devices. The low XLA backend
    optimization level halves compile times; every run compared with another uses it too."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO),
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} "
                         "--xla_backend_optimization_level=0")
    if cache is not None:
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache),
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    env.update(extra)
    return env


def train_command(workdir, data_dir, *extra: str) -> list[str]:
    return [sys.executable, "-m", "kareljax", "train", "--config", "tiny", "--workdir",
            str(workdir), "--no-progress", *(f"--config.{o}" for o in overrides(data_dir, *extra))]


def start_train(workdir, data_dir, *extra: str, devices: int = 1, cache=None, env=None
                ) -> subprocess.Popen:
    return subprocess.Popen(train_command(workdir, data_dir, *extra), cwd=REPO,
                            env={**cli_env(devices, cache), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout: float = 240) -> str:
    """Waits for a run; fails the test with its output unless it exited 0."""
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"exit {process.returncode}:\n{out[-4000:]}"
    return out


@pytest.fixture(scope="session")
def runs(tmp_path_factory, data_dir, compile_cache):
    """Two finished runs of the same config, started together: on 1 device and on 4 devices
    (data 2 x fsdp 2). {"one": workdir, "four": workdir}."""
    root = tmp_path_factory.mktemp("runs")
    one = start_train(root / "one", data_dir, devices=1, cache=compile_cache)
    four = start_train(root / "four", data_dir, "train.mesh.data=2", "train.mesh.fsdp=2",
                       devices=4, cache=compile_cache)
    finish(one)
    finish(four)
    return {"one": root / "one", "four": root / "four"}


def restore(workdir, config, step=None, mesh=None):
    """Checkpoint `step` (default: the newest readable) of a run, onto `mesh` (default: one
    device)."""
    from kareljax.train import checkpoints, optimizer
    from kareljax.train import mesh as mesh_lib
    from kareljax.train import state as state_lib
    mesh = mesh_lib.make_mesh(1, 1) if mesh is None else mesh
    abstract, _ = state_lib.abstract_state(config.model, optimizer.make(config.train)[0], mesh)
    ckpts = checkpoints.Checkpoints(os.path.join(workdir, "checkpoints"), checkpoint_every=8,
                                    keep_latest_every=4, async_save=False)
    try:
        return ckpts.restore(abstract, step)
    finally:
        ckpts.close()


def losses(workdir) -> dict[int, float]:
    """{step: loss} of a run's metrics lines."""
    from kareljax.train.metrics import read_metrics
    return {r["step"]: r["loss"] for r in read_metrics(workdir) if "loss" in r}
