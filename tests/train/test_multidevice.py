"""Four simulated CPU devices (data 2 x fsdp 2) train the same model as one device, within float
tolerance, and a checkpoint saved on four devices restores onto one."""
from __future__ import annotations

import jax
import numpy as np
import orbax.checkpoint as ocp

from kareljax.train.metrics import read_metrics
from tests.train.conftest import STEPS, load, losses, restore


def flat(tree) -> dict[str, np.ndarray]:
    """{"blocks/0/attn/qkv/kernel": array, ...} of a pytree of arrays."""
    def name(key):
        for attr in ("key", "idx", "name"):
            if hasattr(key, attr):
                return str(getattr(key, attr))
        return str(key)
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(name(k) for k in path): np.asarray(x) for path, x in leaves}


def test_four_devices_follow_the_one_device_loss_curve(runs):
    one, four = losses(runs["one"]), losses(runs["four"])
    assert sorted(one) == sorted(four) == list(range(1, STEPS + 1))
    steps = sorted(one)
    np.testing.assert_allclose([four[s] for s in steps], [one[s] for s in steps], rtol=2e-5)
    assert one[STEPS] < one[1] - 1.0      # it learned something
    started = {r["event"]: r for r in read_metrics(runs["four"]) if "event" in r}["started"]
    assert started["devices"] == 4


def test_a_four_device_checkpoint_restores_onto_one_device(runs, data_dir):
    config = load(data_dir)
    four = restore(runs["four"], config)          # saved sharded over 4 devices
    one = restore(runs["one"], config)
    assert four.step == one.step == STEPS and int(four.state["step"]) == STEPS
    devices = {d for x in jax.tree.leaves(four.state) for d in x.sharding.device_set}
    assert len(devices) == 1
    # Exactly the saved values: the same arrays read back as plain numpy, no mesh involved.
    path = runs["four"] / "checkpoints" / str(STEPS) / "state"
    checkpointer = ocp.PyTreeCheckpointer()
    as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray),
                            checkpointer.metadata(path).item_metadata.tree)
    raw = checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=as_numpy))
    restored, saved = flat(four.state["params"]), flat(raw["params"])
    assert restored.keys() == saved.keys()
    for name in restored:
        np.testing.assert_array_equal(restored[name], saved[name], err_msg=name)
    # And the same model as the one-device run, up to float reassociation.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                                         rtol=1e-3, atol=2e-5),
                 four.state["params"], one.state["params"])
    assert four.data == one.data            # the same data position
