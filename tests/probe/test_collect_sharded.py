"""Collection data-parallel over the devices and hosts: decoding and the hidden-state forward pass
split the specs over 4 simulated CPU devices in 2 processes (jax.distributed on localhost), and the
collection on disk is the one 1 device writes."""
import os
import shutil
import subprocess
import sys

import numpy as np

from kareljax import cli
from kareljax.probe import store
from tests.conftest import REPO
from tests.train.test_distributed import free_port

SMALL = ["--config.data.num_train=200", "--config.data.num_val=50", "--config.data.num_test=50"]


def _collect(workdir, devices: int, processes: int = 1) -> None:
    """`kareljax collect` on `processes` processes of `devices` CPU devices each."""
    port = free_port()
    cluster = lambda i: ({} if processes == 1 else {  # noqa: E731
        "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": str(processes),
        "JAX_PROCESS_ID": str(i)})
    started = [subprocess.Popen(
        [sys.executable, "-m", "kareljax", "collect", "--workdir", str(workdir), "--steps",
         "0,10", "--alts", "8", "--batch-size", "30"],      # 30 rows: padded to 32 on 4 devices
        env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO),
                 XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **cluster(i)),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(processes)]
    for process in started:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        process_word = "processes" if processes > 1 else "process"
        assert f"on {devices * processes} devices of {processes} {process_word}" in out, out


def test_collection_on_4_devices_of_2_processes_equals_1_device(tmp_path):
    one = tmp_path / "one"
    assert cli.main(["train", "--config", "tiny", "--workdir", str(one), *SMALL,
                     f"--config.data.data_dir={tmp_path / 'data'}", "--config.train.num_steps=10",
                     "--config.train.checkpoint_every=10", "--config.train.keep_latest_every=10",
                     "--config.train.warmup_steps=2", "--no-progress"]) == 0
    four = tmp_path / "four"
    shutil.copytree(one, four)
    _collect(one, 1)
    _collect(four, 2, processes=2)
    for step in (0, 10):
        a, b = store.step_dir(one, step), store.step_dir(four, step)
        index_a, index_b = store.read_index(a), store.read_index(b)
        assert index_a == index_b
        for split in index_a["splits"]:
            x, y = store.read_split(a, split), store.read_split(b, split)
            assert x.keys() == y.keys()
            for key in x:
                if key == "states":           # a forward pass of other shapes per device
                    np.testing.assert_allclose(x[key], y[key], rtol=1e-4, atol=1e-5)
                else:                         # programs, traces, labels, accuracy: exact
                    np.testing.assert_array_equal(x[key], y[key], err_msg=f"{split} {key}")


def test_a_replicated_model_decodes_its_rows_over_the_mesh():
    """On 4 simulated devices: the rows are split over the mesh, and the programs and states
    equal those of the model on one device."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO),
               XLA_FLAGS="--xla_force_host_platform_device_count=4")
    code = ("from tests.probe.test_collect_sharded import check_replicated_decoding; "
            "check_replicated_decoding()")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "checked on 4 devices" in done.stdout


def check_replicated_decoding() -> None:
    import jax
    from flax import nnx
    from kareljax import config_files
    from kareljax.data import dataset_config
    from kareljax.eval.evaluate import program_grammar
    from kareljax.model import data_parallel, decode
    from kareljax.probe import collect
    from kareljax.train import state as state_lib

    config = config_files.load("tiny")
    model = nnx.merge(state_lib.graphdef(config.model), jax.jit(
        lambda k: state_lib.init_fn(config.model, __import__("optax").sgd(0.1))(k)["params"])(
        state_lib.params_key(0)))
    mesh = data_parallel.batch_mesh()
    assert mesh.size == len(jax.devices()) >= 2
    rows, n = data_parallel.shard_rows(np.arange(15).reshape(5, 3), mesh)
    assert n == 5 and rows.shape[0] % mesh.size == 0
    assert {d for d in rows.sharding.device_set} == set(jax.devices())
    np.testing.assert_array_equal(data_parallel.to_host(rows, n), np.arange(15).reshape(5, 3))

    replicated = data_parallel.replicate(model, mesh)
    assert data_parallel.mesh_of(nnx.split(replicated)[1]) is mesh
    assert data_parallel.mesh_of(nnx.split(model)[1]) is None
    layout = dataset_config.layout(config.data)
    grammar = program_grammar(config.data)
    rng = np.random.default_rng(0)
    prompts = rng.integers(24, 39, (5, layout.prompt_length)).astype(np.int32)
    prompts[:, -1] = layout.template()[layout.prompt_length - 1]          # ends with run{
    one = np.asarray(decode.greedy_decode(model, prompts, grammar))
    spread = decode.greedy_decode(replicated, prompts, grammar)
    assert isinstance(spread, np.ndarray) and spread.shape == one.shape
    np.testing.assert_array_equal(spread, one)
    np.testing.assert_allclose(collect.producing_states(replicated, prompts, one, True),
                               collect.producing_states(model, prompts, one, True),
                               rtol=1e-4, atol=1e-5)
    print(f"checked on {mesh.size} devices")
