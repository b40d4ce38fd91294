"""Training many probes at once (docs/spec.md §9): `fit` is one jit-compiled function, vmapped over probes.

All probes of one call share the inputs (z-scored hidden states of the train, val and test samples),
the model depth and the order of the minibatches (`data_key`); each has its own labels, head layout
and initialisation key. Sharing the minibatch makes each step's first layer one matmul for every
probe; the scan gives each seed its own `data_key`, so seeds differ in initialisation and data
order. Optimisation as the original, scaled by `steps`: AdamW (lr 0.02, weight
decay 0.2), lr x 0.95 every steps/150, minibatches drawn with replacement. Every `eval_every`
steps every probe is scored on val and test; the reported test accuracy is the one at the best val
accuracy ([D] model selection on val, not test). Train accuracy (on a fixed subset of the train
rows) is scored too: its final value and its rise over the second half of training say whether a
probe had converged (docs/spec.md §9: the paper's 10,000 steps; the CPU profile's few are not).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax

from kareljax.probe import models


@dataclasses.dataclass(frozen=True)
class FitOptions:
    steps: int = 10_000
    batch_size: int = 1024
    lr: float = 0.02
    weight_decay: float = 0.2
    decay_rate: float = 0.95
    decay_periods: int = 150
    eval_every: int = 500

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"fit.{name}: must be >= 1, got {getattr(self, name)}")
        if self.steps % self.eval_every:
            raise ValueError(f"fit.steps ({self.steps}) must be a multiple of fit.eval_every "
                             f"({self.eval_every})")

    def optimizer(self) -> optax.GradientTransformation:
        schedule = optax.exponential_decay(
            self.lr, transition_steps=max(1, self.steps // self.decay_periods),
            decay_rate=self.decay_rate, staircase=True)
        return optax.adamw(schedule, weight_decay=self.weight_decay)


def _accuracy(params, x, y, layouts, n, chunk=4096):
    """Fraction right of every probe on the first n rows: labels y [P, M, heads] per probe,
    inputs x [M, d] shared (rows from n on are padding)."""
    correct = 0
    for start in range(0, x.shape[0], chunk):  # static chunks bound the activation memory
        logits = models.group_apply(params, x[start:start + chunk])
        right = jax.vmap(lambda lg, yb, layout: models.loss_and_correct(lg, yb, layout)[1])(
            logits, y[:, start:start + chunk], layouts)
        real = start + jnp.arange(right.shape[1]) < n
        correct = correct + jnp.where(real[None], right, 0).astype(jnp.float32).sum(-1)
    return correct / jnp.maximum(n, 1)


@functools.partial(jax.jit, static_argnames=("hidden", "num_outputs", "options"))
def fit(keys, data_key, y_train, y_val, y_test, mask, offset, valid, x_train, x_val, x_test,
        counts=None, group=None, *, hidden: tuple[int, ...], num_outputs: int,
        options: FitOptions) -> dict:
    """Trains P probes: init keys [P], labels [P, M, heads] per split, head layouts [P, ...],
    inputs [M, d] shared. `counts` (n_train, n_val, n_test) says how many leading rows of each
    split are real (the rest pad the arrays to fixed sizes, so one compilation serves many
    checkpoints); default: all rows. `data_key` orders the minibatches, which all P probes share (so each
    step's first layer is one matmul for all of them). `group` [P, heads]: each head's output
    when probes predict several labels (`models.HeadLayout`). Returns {val_acc, test_acc, best_step,
    train_acc, train_acc_rise} [P].
    """
    layouts = models.HeadLayout(mask, offset, valid, group)
    n_train, n_val, n_test = (x_train.shape[0], x_val.shape[0], x_test.shape[0]) if counts is None \
        else counts
    params = jax.vmap(lambda k: models.init(k, x_train.shape[1], hidden, num_outputs))(keys)
    tx = options.optimizer()  # elementwise, so one optimizer serves the stacked probes
    opt_state = tx.init(params)

    def total_loss(p, xb, yb):
        losses = jax.vmap(lambda lg, y, layout: models.loss_and_correct(lg, y, layout)[0])(
            models.group_apply(p, xb), yb, layouts)
        return losses.sum()  # each probe's parameters get its own loss's gradient

    def step(carry, t):
        p, o = carry
        idx = jax.random.randint(jax.random.fold_in(data_key, t), (options.batch_size,), 0,
                                 n_train)
        grads = jax.grad(total_loss)(p, x_train[idx], y_train[:, idx])
        updates, o = tx.update(grads, o, p)
        return (optax.apply_updates(p, updates), o), None

    # Train accuracy on a fixed subset of the train rows, as many as val has (padded): enough to
    # see whether a probe still learns, at a scoring cost no larger than val's.
    seen = min(x_train.shape[0], x_val.shape[0])
    x_seen, y_seen = x_train[:seen], y_train[:, :seen]
    n_seen = jnp.minimum(n_train, seen)

    def round_(carry, r):
        p, o, best = carry
        (p, o), _ = jax.lax.scan(step, (p, o), r * options.eval_every
                                 + jnp.arange(options.eval_every))
        val = _accuracy(p, x_val, y_val, layouts, n_val)
        test = _accuracy(p, x_test, y_test, layouts, n_test)
        train = _accuracy(p, x_seen, y_seen, layouts, n_seen)
        better = val > best[0]
        best = jax.tree.map(lambda new, old: jnp.where(better, new, old),
                            (val, test, jnp.full_like(best[2], (r + 1) * options.eval_every)),
                            best)
        return (p, o, best), train

    num = keys.shape[0]
    best0 = (jnp.full(num, -1.0), jnp.zeros(num), jnp.zeros(num, jnp.int32))
    (_, _, best), train = jax.lax.scan(round_, (params, opt_state, best0),
                                       jnp.arange(options.steps // options.eval_every))
    # The rise over the second half of training: the learning rate is down to 2 % of its start
    # by then (0.95 ** 75), so a probe whose train accuracy still climbs there has not converged.
    back = max(1, train.shape[0] // 2)
    previous = train[-1 - back] if train.shape[0] > back else jnp.zeros(num)
    return {"val_acc": best[0], "test_acc": best[1], "best_step": best[2],
            "train_acc": train[-1], "train_acc_rise": train[-1] - previous}


def zscore(x_train, x_val, x_test):
    """Inputs z-scored with the val split's statistics."""
    if not len(x_val):
        raise ValueError("no val samples to take the z-scoring statistics from")
    mean, std = x_val.mean(0), x_val.std(0) + 1e-6
    return tuple((x - mean) / std for x in (x_train, x_val, x_test))
