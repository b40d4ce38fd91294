"""The training loss and the jitted train step.

The train state is a pytree {"params": nnx.State, "opt_state": optax state, "step": int32 []}
(step = updates applied so far). A step's batch holds `grad_accum` micro-batches:
{"tokens", "loss_mask", "valid"} each [grad_accum, micro_batch, L]; gradients are summed over them
with `lax.scan`, so the update equals the one of the whole batch at once.

The model gets no attention mask: examples are right-padded, so a causal mask already keeps every
real token from seeing padding, and padding is never a target.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx

BATCH_KEYS = ("tokens", "loss_mask", "valid")


def loss_sums(logits: jax.Array, tokens: jax.Array, loss_mask: jax.Array
              ) -> tuple[jax.Array, jax.Array]:
    """(sum of next-token cross-entropy over target positions, number of targets).

    Position t of `loss_mask` marks token t as a target, predicted from the logits at t - 1.
    """
    ce = optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], tokens[:, 1:])
    mask = loss_mask[:, 1:]
    return jnp.where(mask, ce, 0.0).sum(), mask.sum()


def mean_loss(model: nnx.Module, batch: dict) -> jax.Array:
    """Mean cross-entropy per target token of one [B, L] batch."""
    total, count = loss_sums(model(batch["tokens"]), batch["tokens"], batch["loss_mask"])
    return total / jnp.maximum(count, 1)


def train_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation, lr: optax.Schedule,
               state: dict, batch: dict, param_shardings=None) -> tuple[dict, dict]:
    """One optimizer update over all micro-batches; returns (new state, scalar metrics).
    `param_shardings` (optional) pins the gradient accumulator to the parameters' sharding."""
    params = state["params"]
    count = jnp.maximum(batch["loss_mask"][..., 1:].sum(), 1).astype(jnp.float32)

    def micro_loss(p, micro):
        logits = nnx.merge(graphdef, p)(micro["tokens"])
        total, _ = loss_sums(logits, micro["tokens"], micro["loss_mask"])
        return total / count            # summed over micro-batches = the mean over the step

    def accumulate(grads, micro):
        loss, g = jax.value_and_grad(micro_loss)(params, micro)
        return pin(jax.tree.map(jnp.add, grads, g)), loss

    def pin(tree):
        if param_shardings is None:
            return tree
        return jax.lax.with_sharding_constraint(tree, param_shardings)

    zeros = pin(jax.tree.map(jnp.zeros_like, params))
    grads, losses = jax.lax.scan(accumulate, zeros, batch)
    updates, opt_state = tx.update(grads, state["opt_state"], params)
    new_state = {"params": optax.apply_updates(params, updates), "opt_state": opt_state,
                 "step": state["step"] + 1}
    metrics = {"loss": losses.sum(), "lr": jnp.asarray(lr(state["step"]), jnp.float32),
               "grad_norm": optax.tree.norm(grads),
               "tokens": batch["valid"].sum(dtype=jnp.int32),
               "targets": count.astype(jnp.int32)}
    return new_state, metrics


def _traced_once(fn):
    """`fn`, refusing a second trace of this very function. (chex.assert_max_traces counts by the
    function's source and the names on the stack where it is wrapped, so two runs trained in one
    process, say two notebook cells, would count as one function traced twice.)"""
    traces = [0]

    @functools.wraps(fn)
    def guarded(*args):
        traces[0] += 1
        if traces[0] > 1:
            raise AssertionError(f"the train step is traced a second time (now {traces[0]}): "
                                 "an argument's shape, dtype or sharding changed between steps")
        return fn(*args)

    return guarded


def make_train_step(graphdef, tx, lr, state_shardings, batch_sharding, metric_sharding,
                    trace_guard: bool = True):
    """`train_step` jitted with explicit shardings, the state donated, and a guard that raises if
    it is ever traced twice (a changing shape or dtype would recompile every step). The guard
    counts per process, so `kareljax plan`, which builds one step per target, turns it off."""

    def step(state, batch):
        return train_step(graphdef, tx, lr, state, batch, state_shardings["params"])

    if trace_guard:
        step = _traced_once(step)
    batch_shardings = {k: batch_sharding for k in BATCH_KEYS}
    return jax.jit(step, in_shardings=(state_shardings, batch_shardings),
                   out_shardings=(state_shardings, metric_sharding), donate_argnums=0)
