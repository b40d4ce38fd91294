"""Training many probes at once (docs/spec.md §9): `fit` is one jit-compiled function, vmapped over
probes; `fit_sharded` spreads the probes over every device of a mesh.

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

Sharded (`fit_sharded`): the probe axis is split over a 1-D mesh (axis "probes", `probe_mesh`), the
shared inputs are replicated, and each device trains its probes in blocks of `block`, one block's
whole training after another (a block's parameters and optimizer state stay in cache on a CPU).
Probes are independent, so no device talks to another until the results are gathered; a probe's
result depends on its own key and labels only, not on the device or block it trains in.

Several inputs (`fit_sources`): G inputs (say G checkpoints), each with its own P probes, on a 2-D
mesh (`source_mesh`: axes "sources" x "probes", one device per source group). The inputs are split
over the devices rather than replicated, and each device trains its inputs one after another, each
input's probes in blocks as above.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from kareljax.probe import models

PROBES = "probes"   # the mesh axis the probes are split over


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


def minibatches(data_key, n_train, options: FitOptions) -> jax.Array:
    """The train rows of every step's minibatch [steps, batch_size], drawn with replacement from
    the first n_train (step t's from `fold_in(data_key, t)`)."""
    return jax.vmap(lambda t: jax.random.randint(jax.random.fold_in(data_key, t),
                                                 (options.batch_size,), 0, n_train))(
        jnp.arange(options.steps))


def _train(keys, batches, y_train, y_val, y_test, layouts, x_train, x_val, x_test, counts, *,
           hidden, num_outputs, options: FitOptions) -> dict:
    """`fit`'s computation on whatever probes it is given (the body of both entry points), with
    the minibatches `batches` (`minibatches`)."""
    n_train, n_val, n_test = counts
    params = jax.vmap(lambda k: models.init(k, x_train.shape[1], hidden, num_outputs))(keys)
    tx = options.optimizer()  # elementwise, so one optimizer serves the stacked probes
    opt_state = tx.init(params)

    def total_loss(p, xb, yb):
        losses = jax.vmap(lambda lg, y, layout: models.loss_and_correct(lg, y, layout)[0])(
            models.group_apply(p, xb), yb, layouts)
        return losses.sum()  # each probe's parameters get its own loss's gradient

    def step(carry, t):
        p, o = carry
        idx = batches[t]
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


@functools.partial(jax.jit, static_argnames=("hidden", "num_outputs", "options"))
def fit(keys, data_key, y_train, y_val, y_test, mask, offset, valid, x_train, x_val, x_test,
        counts=None, group=None, *, hidden: tuple[int, ...], num_outputs: int,
        options: FitOptions) -> dict:
    """Trains P probes on one device: init keys [P], labels [P, M, heads] per split, head layouts
    [P, ...], inputs [M, d] shared. `counts` (n_train, n_val, n_test) says how many leading rows
    of each split are real (the rest pad the arrays to fixed sizes, so one compilation serves many
    checkpoints); default: all rows. `data_key` orders the minibatches, which all P probes share
    (so each step's first layer is one matmul for all of them). `group` [P, heads]: each head's
    output when probes predict several labels (`models.HeadLayout`). Returns {val_acc, test_acc,
    best_step, train_acc, train_acc_rise} [P].
    """
    counts = (x_train.shape[0], x_val.shape[0], x_test.shape[0]) if counts is None else counts
    return _train(keys, minibatches(data_key, counts[0], options), y_train, y_val, y_test,
                  models.HeadLayout(mask, offset, valid, group), x_train, x_val, x_test, counts,
                  hidden=hidden, num_outputs=num_outputs, options=options)


# --- the probes spread over a mesh ------------------------------------------------------------

@functools.cache
def probe_mesh(devices: tuple | None = None) -> Mesh:
    """A 1-D mesh (axis "probes") over `devices` (default: every device of every process)."""
    devices = tuple(jax.devices()) if devices is None else tuple(devices)
    return Mesh(np.array(devices), (PROBES,))


def per_device_memory(mesh: Mesh, memory_gib: float) -> float:
    """Bytes one device of `mesh` may use out of a budget of `memory_gib`: each accelerator has
    its own memory; CPU devices share their host's, so each gets its share."""
    budget = memory_gib * 2 ** 30
    local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
    if local and local[0].platform == "cpu":
        budget /= len(local)
    return budget


def _cpu(mesh: Mesh) -> bool:
    return mesh.devices.flat[0].platform == "cpu"


def place(mesh: Mesh, array, per_probe: bool | P) -> jax.Array:
    """A global array on `mesh` from a host array every process holds whole: split on its first
    axis over "probes" (`per_probe` True) or replicated (False), or laid out by a PartitionSpec."""
    array = np.asarray(array)
    spec = per_probe if isinstance(per_probe, P) else P(PROBES) if per_probe else P()
    return jax.make_array_from_callback(array.shape, NamedSharding(mesh, spec),
                                        lambda index: array[index])


def _per_probe(key_data, y_train, y_val, y_test, mask, offset, valid, group) -> tuple:
    """The arguments each probe has its own of (key, labels, head layout)."""
    return (key_data, y_train, y_val, y_test, mask, offset, valid) + (
        () if group is None else (group,))


def _gathered(mesh: Mesh, out: dict) -> dict:
    """`out` replicated over `mesh`: every process can read every probe's result."""
    replicated = NamedSharding(mesh, P())
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, replicated), out)


def _fit_blocks(per_probe, shared, *, block, hidden, num_outputs, options):
    """One device's probes, `block` at a time (`lax.map`: one block's whole training, then the
    next's). per_probe: (key data, labels of each split, head layout fields); shared: (the data
    key's data, inputs of each split, counts)."""
    key_data, y_train, y_val, y_test, *layout = per_probe
    data_key_data, x_train, x_val, x_test, counts = shared
    blocks = jax.tree.map(lambda a: a.reshape((-1, block) + a.shape[1:]),
                          (jax.random.wrap_key_data(key_data), y_train, y_val, y_test,
                           models.HeadLayout(*layout)))
    batches = minibatches(jax.random.wrap_key_data(data_key_data), counts[0], options)

    def train_block(b):
        return _train(b[0], batches, *b[1:], x_train, x_val, x_test,
                      (counts[0], counts[1], counts[2]), hidden=hidden,
                      num_outputs=num_outputs, options=options)

    out = jax.lax.map(train_block, blocks)
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), out)


def _fit_sharded(key_data, data_key_data, y_train, y_val, y_test, mask, offset, valid, x_train,
                 x_val, x_test, counts, group=None, *, mesh: Mesh, block: int,
                 hidden: tuple[int, ...], num_outputs: int, options: FitOptions) -> dict:
    per_probe = _per_probe(key_data, y_train, y_val, y_test, mask, offset, valid, group)
    shared = (data_key_data, x_train, x_val, x_test, counts)
    body = functools.partial(_fit_blocks, block=block, hidden=hidden, num_outputs=num_outputs,
                             options=options)
    # Each device trains its own probes, with no collective: the replication (vma) checks, which
    # would want every loop carry started from a constant marked as varying, are left off.
    out = jax.shard_map(body, mesh=mesh, in_specs=(P(PROBES), P()), out_specs=P(PROBES),
                        check_vma=False)(per_probe, shared)
    return _gathered(mesh, out)


_STATIC = ("mesh", "block", "hidden", "num_outputs", "options")
# On CPU each device is one core (`kareljax.platform`) and the probes keep every device busy, so a
# device's matmuls run on its own thread, without Eigen's intra-op thread pool (the pool only
# makes the devices' threads wait on each other).
CPU_COMPILER_OPTIONS = {"xla_cpu_multi_thread_eigen": False}
_fit_sharded_cpu = jax.jit(_fit_sharded, static_argnames=_STATIC,
                           compiler_options=CPU_COMPILER_OPTIONS)
_fit_sharded_other = jax.jit(_fit_sharded, static_argnames=_STATIC)


def compiled_fit(mesh: Mesh):
    """The jitted function `fit_sharded` calls on `mesh` (`_cache_size()` counts its
    compilations)."""
    return _fit_sharded_cpu if _cpu(mesh) else _fit_sharded_other


def fit_sharded(key_data, data_key_data, y_train, y_val, y_test, mask, offset, valid, x_train,
                x_val, x_test, counts, group=None, *, mesh: Mesh, block: int = 0,
                hidden: tuple[int, ...], num_outputs: int, options: FitOptions) -> dict:
    """`fit` with the probes split over `mesh`'s "probes" axis: key_data [P, ...] (of
    `jax.random.key_data`), labels and layouts [P, ...] split; the data key's data, inputs and
    counts replicated (arrays from `place`; on a single process host arrays do too). P must be a
    multiple of the mesh size times `block` (0: all of a device's probes in one block). Returns
    the results [P], replicated on every device (of every process).
    """
    per_device = key_data.shape[0] // mesh.size
    if key_data.shape[0] % mesh.size or (block and per_device % block):
        raise ValueError(f"{key_data.shape[0]} probes do not split into {mesh.size} devices x "
                         f"blocks of {block}")
    return compiled_fit(mesh)(key_data, data_key_data, y_train, y_val, y_test, mask, offset,
                              valid, x_train, x_val, x_test, counts, group, mesh=mesh,
                              block=block or per_device, hidden=hidden, num_outputs=num_outputs,
                              options=options)


# --- several inputs' probes in one call -------------------------------------------------------

SOURCES = "sources"   # the mesh axis the inputs (checkpoints, layer views) are split over


def source_mesh(mesh: Mesh) -> Mesh:
    """`mesh`'s devices as a 2-D mesh (sources, probes) with one device per source group: every
    device trains whole sources (all the probes of each of its inputs)."""
    devices = np.asarray(mesh.devices).reshape(-1, 1)
    return Mesh(devices, (SOURCES, PROBES))


def _fit_sources(key_data, data_key_data, y_train, y_val, y_test, mask, offset, valid, x_train,
                 x_val, x_test, counts, group=None, *, mesh: Mesh, block: int,
                 hidden: tuple[int, ...], num_outputs: int, options: FitOptions) -> dict:
    per_probe = _per_probe(key_data, y_train, y_val, y_test, mask, offset, valid, group)
    inputs = (x_train, x_val, x_test, counts)
    body = functools.partial(_fit_blocks, block=block, hidden=hidden, num_outputs=num_outputs,
                             options=options)

    def device(per_probe, inputs, data_key_data):
        # One source after another (its probes in blocks), as one device's probes are trained.
        return jax.lax.map(lambda a: body(a[0], (data_key_data, *a[1])), (per_probe, inputs))

    out = jax.shard_map(device, mesh=mesh, in_specs=(P(SOURCES, PROBES), P(SOURCES), P()),
                        out_specs=P(SOURCES, PROBES), check_vma=False)(
        per_probe, inputs, data_key_data)
    return _gathered(mesh, out)


_fit_sources_cpu = jax.jit(_fit_sources, static_argnames=_STATIC,
                           compiler_options=CPU_COMPILER_OPTIONS)
_fit_sources_other = jax.jit(_fit_sources, static_argnames=_STATIC)


def compiled_fit_sources(mesh: Mesh):
    """The jitted function `fit_sources` calls on `mesh`."""
    return _fit_sources_cpu if _cpu(mesh) else _fit_sources_other


def fit_sources(key_data, data_key_data, y_train, y_val, y_test, mask, offset, valid, x_train,
                x_val, x_test, counts, group=None, *, mesh: Mesh, block: int,
                hidden: tuple[int, ...], num_outputs: int, options: FitOptions) -> dict:
    """`fit` for G inputs at once, each with its own P probes, the inputs split over the
    "sources" axis of a `source_mesh`: key data, labels and layouts [G, P, ...]; inputs
    [G, rows, d] and counts [G, 3] (per source); the data key's data shared. G must be a multiple
    of the mesh size and P of `block`. A probe's result is what `fit_sharded` gives it with its
    source's inputs alone (its own key, the same minibatches). Returns the results [G, P],
    replicated."""
    sources, probes = key_data.shape[:2]
    if sources % mesh.shape[SOURCES] or probes % block:
        raise ValueError(f"{sources} sources x {probes} probes do not split into "
                         f"{mesh.shape[SOURCES]} devices and blocks of {block}")
    return compiled_fit_sources(mesh)(
        key_data, data_key_data, y_train, y_val, y_test, mask, offset, valid, x_train, x_val,
        x_test, counts, group, mesh=mesh, block=block, hidden=hidden, num_outputs=num_outputs,
        options=options)


def zscore(x_train, x_val, x_test):
    """Inputs z-scored with the val split's statistics."""
    if not len(x_val):
        raise ValueError("no val samples to take the z-scoring statistics from")
    mean, std = x_val.mean(0), x_val.std(0) + 1e-6
    return tuple((x - mean) / std for x in (x_train, x_val, x_test))
