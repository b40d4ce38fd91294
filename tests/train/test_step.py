"""The loss and the train step on fixed batches of the tiny config: shapes, the masked mean,
gradient accumulation, and compiling once."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from kareljax.data import pipeline
from kareljax.train import mesh as mesh_lib
from kareljax.train import optimizer, step
from kareljax.train import state as state_lib
from tests.train.conftest import load


@pytest.fixture(scope="module")
def config(data_dir):
    return load(data_dir)


@pytest.fixture(scope="module")
def batch(config):
    """One [8, L] training batch of the test dataset (numpy)."""
    return next(iter(pipeline.batches(config.data, batch_size=8, seed=0)))


@pytest.fixture(scope="module")
def setup(config):
    """(graphdef, tx, lr, shardings, mesh) on a one-device mesh."""
    mesh = mesh_lib.make_mesh(1, 1)
    tx, lr = optimizer.make(config.train)
    _, shardings = state_lib.abstract_state(config.model, tx, mesh)
    return state_lib.graphdef(config.model), tx, lr, shardings, mesh


@pytest.fixture(scope="module")
def initial(config, setup):
    """(The initial train state as numpy, its shardings): `fresh_state` puts a copy on the mesh."""
    _, tx, _, shardings, _ = setup
    state = state_lib.init_state(config.model, tx, config.train.seed, shardings)
    return jax.tree.map(np.asarray, state), shardings


def fresh_state(initial):
    return jax.device_put(*initial)


@pytest.fixture(scope="module")
def forward(setup):
    """Jitted (params, tokens) -> logits and (params, batch) -> mean loss."""
    graphdef = setup[0]
    logits = jax.jit(lambda p, t: nnx.merge(graphdef, p)(t))
    loss = jax.jit(lambda p, b: step.mean_loss(nnx.merge(graphdef, p), b))
    return logits, loss


@pytest.fixture(scope="module")
def train_fn(setup):
    """The production train step (shardings, donation, compile-once guard), shared by the tests
    so it compiles once for all of them."""
    graphdef, tx, lr, shardings, mesh = setup
    return step.make_train_step(graphdef, tx, lr, shardings,
                                mesh_lib.batch_sharding(mesh, 3, 1), mesh_lib.replicated(mesh))


def as_step_batch(batch, accum=1):
    return {k: jnp.asarray(batch[k]).reshape((accum, -1) + batch[k].shape[1:])
            for k in step.BATCH_KEYS}


def on_device(batch):
    return {k: jnp.asarray(batch[k]) for k in step.BATCH_KEYS}


def test_batch_shapes_and_masks(batch):
    tokens, loss_mask, valid = batch["tokens"], batch["loss_mask"], batch["valid"]
    assert tokens.shape == loss_mask.shape == valid.shape and tokens.shape[0] == 8
    assert not loss_mask[:, 0].any() and (loss_mask <= valid).all()


def test_loss_is_the_masked_mean_cross_entropy(initial, forward, batch):
    logits_fn, loss_fn = forward
    params = fresh_state(initial)["params"]
    logits = logits_fn(params, batch["tokens"])
    assert logits.shape == batch["tokens"].shape + (logits.shape[-1],)
    assert logits.dtype == jnp.float32
    # By hand, in float64: -log softmax of the next token at every target position.
    lg = np.asarray(logits, np.float64)[:, :-1]
    top = lg.max(-1, keepdims=True)
    logp = lg - top - np.log(np.exp(lg - top).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, batch["tokens"][:, 1:, None], -1)[..., 0]
    expected = nll[batch["loss_mask"][:, 1:]].mean()
    got = float(loss_fn(params, on_device(batch)))
    assert got == pytest.approx(expected, rel=1e-5)
    # Near-uniform predictions at initialisation: about log(vocab).
    assert got == pytest.approx(np.log(logits.shape[-1]), abs=0.2)
    # Only target positions count: dropping half the targets changes the loss to their mean.
    even = np.arange(batch["tokens"].shape[1]) % 2 == 0
    half = dict(batch, loss_mask=batch["loss_mask"] & even)
    expected_half = nll[half["loss_mask"][:, 1:]].mean()
    assert float(loss_fn(params, on_device(half))) == pytest.approx(expected_half, rel=1e-5)


def test_padding_does_not_change_the_loss(initial, forward, batch):
    _, loss_fn = forward
    params = fresh_state(initial)["params"]
    changed = dict(batch, tokens=np.where(batch["valid"], batch["tokens"], 5))
    assert float(loss_fn(params, on_device(batch))) == float(loss_fn(params, on_device(changed)))


def test_step_updates_and_reports(config, initial, train_fn, batch):
    first_params = initial[0]["params"]
    after, metrics = train_fn(fresh_state(initial), as_step_batch(batch))
    assert int(after["step"]) == 1
    assert set(metrics) == {"loss", "lr", "grad_norm", "tokens", "targets"}
    assert all(m.shape == () for m in metrics.values())
    assert int(metrics["tokens"]) == batch["valid"].sum()
    assert int(metrics["targets"]) == batch["loss_mask"].sum()
    assert float(metrics["lr"]) == 0.0 and float(metrics["grad_norm"]) > 0
    # The first update has lr 0 (warmup from 0), the second moves every parameter.
    after, metrics = train_fn(after, as_step_batch(batch))
    assert float(metrics["lr"]) == pytest.approx(config.train.lr / config.train.warmup_steps)
    moved = jax.tree.map(lambda a, b: not np.array_equal(a, b), first_params,
                         jax.tree.map(np.asarray, after["params"]))
    assert all(jax.tree.leaves(moved))


def test_gradient_accumulation_matches_the_whole_batch(setup, initial, train_fn, batch):
    graphdef, tx, lr, *_ = setup
    accumulating = jax.jit(lambda s, b: step.train_step(graphdef, tx, lr, s, b))
    results = []
    for fn, accum in ((train_fn, 1), (accumulating, 4)):
        state = fresh_state(initial)
        for _ in range(2):
            state, metrics = fn(state, as_step_batch(batch, accum))
        results.append((jax.tree.map(np.asarray, state["params"]), float(metrics["loss"]),
                        float(metrics["grad_norm"])))
    (p1, l1, g1), (p4, l4, g4) = results
    assert l4 == pytest.approx(l1, rel=1e-5) and g4 == pytest.approx(g1, rel=1e-4)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=2e-6, rtol=1e-4), p1, p4)


def test_the_train_step_compiles_once(config, initial, train_fn, batch):
    state = fresh_state(initial)
    other = next(iter(pipeline.batches(config.data, batch_size=8, seed=1)))
    for b in (batch, other, batch):
        state, metrics = train_fn(state, as_step_batch(b))
    jax.block_until_ready(metrics)
    assert train_fn._cache_size() == 1
    # The guard is live: a batch of another length, or a state not on the mesh, would trace
    # again, and is refused.
    with pytest.raises(AssertionError, match="traced"):
        train_fn(jax.tree.map(jnp.array, initial[0]), as_step_batch(batch))
    short = {k: v[:, :-1] for k, v in batch.items() if k != "length"}
    with pytest.raises(AssertionError, match="traced"):
        train_fn(state, as_step_batch(short))
