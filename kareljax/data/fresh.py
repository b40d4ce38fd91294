"""Fresh training data generated on device from (seed, step): no dataset on disk, no host work.

`fresh_batches(data, batch_size)` returns a jitted `make(seed, step) -> batch` with the arrays of
`batches.training_batch`. Each batch draws its programs (straight-line, by the config's weights and
`no_noops`, each length uniform over `train_lengths`), its worlds and their outputs on device. The
per-length counts are exact only in expectation, unlike the stored splits (docs/spec.md §4); programs with
conditionals need the host generator, so those configs are rejected.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax import lax

from kareljax.data import batches as batch_arrays
from kareljax.data import dataset_config, generate, programs, tokens
from kareljax.data.worlds import random_worlds
from kareljax.karel import semantics, world_ops
from kareljax.karel.execution import Element
from kareljax.karel.straight_runner import run_straight
from kareljax.karel.world import World

_FRESH_STREAM = 7  # keeps fresh data apart from the splits' streams (SPLIT_IDS 0..2)


def draw_actions(key, lengths, max_length: int, cumulative: jax.Array) -> jax.Array:
    """int32 [B, max_length] action ids (-1 after each program's length).

    `cumulative` [ban states, 5] are the running weight sums of `programs._cumulative_weights`;
    the ban state (an action bans its inverse until a move) is carried through a scan.
    """
    ban_bit = jnp.asarray(programs._BAN_BIT, jnp.int32)

    def step(bans, t):
        cum = cumulative[bans]
        draw = jax.random.randint(jax.random.fold_in(key, t), bans.shape, 0, cum[:, -1])
        kind = (cum <= draw[:, None]).sum(axis=1).astype(jnp.int32)
        live = t < lengths
        bans = jnp.where(live, jnp.where(kind == 0, 0, bans | ban_bit[kind]), bans)
        return bans, jnp.where(live, kind, -1)

    _, actions = lax.scan(step, jnp.zeros(lengths.shape, jnp.int32), jnp.arange(max_length))
    return actions.T


def run_straight_programs(actions: jax.Array, worlds: World, max_steps: int) -> World:
    """Final worlds [B, E] of straight-line programs [B, A] (original semantics), jittable."""
    num, examples, height, width = worlds.walls.shape
    flat = jax.tree.map(lambda x: x.reshape((num * examples,) + x.shape[2:]), worlds)
    el = Element(program=jnp.repeat(jnp.arange(num), examples),
                 remap=jnp.broadcast_to(jnp.asarray(semantics.ORIGINAL), (num * examples, 5)),
                 walls=world_ops.pack_walls(flat.walls),
                 markers=flat.markers.reshape(num * examples, -1).astype(jnp.uint8),
                 cell=(flat.row * width + flat.col).astype(jnp.int32),
                 facing=flat.facing.astype(jnp.int32))
    columns = jnp.repeat(actions, examples, axis=0).T
    cell, facing, markers, *_ = run_straight(el, columns, max_steps, width, 0)
    unflat = lambda x: x.reshape((num, examples) + x.shape[1:])  # noqa: E731
    return World(worlds.walls, unflat(markers).reshape(worlds.walls.shape), unflat(cell // width),
                 unflat(cell % width), unflat(facing))


def fresh_batches(data: ml_collections.ConfigDict, batch_size: int, loss_on: str = "all"):
    """A jitted `make(seed, step) -> batch` (see the module docstring)."""
    dataset_config.validate(data)
    options = dataset_config.program_options(data)
    if options.has_conditionals:
        raise dataset_config.ConfigError(
            "data.no_conditionals: fresh on-device data draws straight-line programs only; set "
            "no_conditionals=True or train from a built dataset")
    if loss_on not in batch_arrays.LOSS_ON:
        raise ValueError(f"loss_on must be one of {batch_arrays.LOSS_ON}, got {loss_on!r}")
    layout = dataset_config.layout(data)
    cumulative = programs._cumulative_weights(options)
    if not options.no_noops:
        cumulative = np.broadcast_to(cumulative[:1], cumulative.shape)
    cumulative = jnp.asarray(cumulative, jnp.int32)
    lengths_allowed = jnp.asarray(dataset_config.train_lengths(data), jnp.int32)
    shape = (batch_size, data.num_examples)

    @jax.jit
    def make(seed, step):
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), _FRESH_STREAM), step)
        k_len, k_act, k_world = jax.random.split(key, 3)
        lengths = jax.random.choice(k_len, lengths_allowed, (batch_size,))
        actions = draw_actions(k_act, lengths, data.max_length, cumulative)
        worlds = random_worlds(k_world, shape, data.world_height, data.world_width)
        outputs = run_straight_programs(actions, worlds, data.max_steps)
        records = {"inputs": generate.glyphs(worlds), "outputs": generate.glyphs(outputs),
                   "program": tokens.encode_straight(actions, layout.max_program_tokens),
                   "length": lengths}
        return batch_arrays.training_batch(layout, records, loss_on)

    return make
