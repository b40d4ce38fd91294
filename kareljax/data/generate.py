"""Generating a dataset split (docs/spec.md §1, §4): seeded programs and worlds, outputs from the JAX
interpreter, in the compact arrays of `example_codec`.

Everything derives from `data.seed`: the split's programs from numpy's
`SeedSequence([seed, split id])` (chunk c of a split with conditionals adds c), the worlds of chunk c
from `fold_in(fold_in(key(seed), split id), c)`. Chunks have a fixed size, so a split's content
does not depend on the machine, the device count or the other splits.
"""
from __future__ import annotations

import functools
from typing import Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from kareljax.data import dataset_config, programs, tokens
from kareljax.data.worlds import random_worlds
from kareljax.karel import bytecode, interpreter
from kareljax.karel.world import World

CHUNK_PROGRAMS = 16384
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


@functools.partial(jax.jit, static_argnames=("shape", "height", "width"))
def _random_worlds(key, shape, height, width):
    return random_worlds(key, shape, height, width)


@jax.jit
def glyphs(world: World) -> jax.Array:
    """uint8 [..., h, w] cell glyph indices of worlds' interiors (`example_codec`)."""
    return (tokens.world_ids(world) - tokens.WALL).astype(jnp.uint8)


def worlds_from_glyphs(cells) -> World:
    """Worlds (border added) from glyph indices [..., h, w] of *inputs* (exact for them: at most one
    marker per cell and none under the hero); numpy."""
    cells = np.asarray(cells).astype(np.int32)
    lead = cells.shape[:-2]
    padded = np.pad(cells, [(0, 0)] * len(lead) + [(1, 1), (1, 1)], constant_values=0)
    hero = (padded >= 2) & (padded <= 5)
    if not (hero.sum(axis=(-2, -1)) == 1).all():
        raise ValueError("every grid needs exactly one hero")
    flat = hero.reshape(lead + (-1,)).argmax(-1)
    width = padded.shape[-1]
    facing = np.take_along_axis(padded.reshape(lead + (-1,)), flat[..., None], -1)[..., 0] - 2
    markers = np.where(padded >= 6, padded - 5, 0)
    return World(padded == 0, markers.astype(np.int32), (flat // width).astype(np.int32),
                 (flat % width).astype(np.int32), facing.astype(np.int32))


def chunk_key(seed: int, split: str, chunk: int) -> jax.Array:
    key = jax.random.fold_in(jax.random.key(seed), SPLIT_IDS[split])
    return jax.random.fold_in(key, chunk)


def _pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    """`a` with its first row repeated until it has `rows` rows (one jit shape for every chunk)."""
    extra = rows - len(a)
    return a if extra == 0 else np.concatenate([a, np.repeat(a[:1], extra, axis=0)])


def run_outputs(code: bytecode.Bytecode, worlds: World, max_steps: int) -> World:
    """The final worlds of each program [P] on its worlds [P, E] (original semantics)."""
    ex = interpreter.execute(code, worlds, max_steps=max_steps, max_markers=1)
    return World(worlds.walls, ex.markers[:, :, 0], ex.row[:, :, 0], ex.col[:, :, 0],
                 ex.facing[:, :, 0])


def generate_split(data: ml_collections.ConfigDict, split: str,
                   chunk_size: int = CHUNK_PROGRAMS) -> Iterator[dict]:
    """The split's records, a chunk of up to `chunk_size` programs at a time, as uint8 arrays
    {program, length, inputs, outputs} (see `example_codec`)."""
    dataset_config.validate(data)
    options = dataset_config.program_options(data)
    layout = dataset_config.layout(data)
    n = dataset_config.split_size(data, split)
    rng = np.random.default_rng([data.seed, SPLIT_IDS[split]])
    straight = not options.has_conditionals
    if straight:
        actions, lengths = programs.straight_line_batch(rng, n, options)
    else:
        lengths = programs.length_schedule(rng, n, options)
    shape = (chunk_size, data.num_examples)
    for c, start in enumerate(range(0, n, chunk_size)):
        stop = min(n, start + chunk_size)
        worlds = _random_worlds(chunk_key(data.seed, split, c), shape, data.world_height,
                                data.world_width)
        if straight:
            chunk_actions = _pad_rows(actions[start:stop], chunk_size)
            code = programs.straight_line_bytecode(chunk_actions)
            program_ids = tokens.encode_straight(actions[start:stop], layout.max_program_tokens)
        else:
            shown = jax.tree.map(lambda x: np.asarray(x[:stop - start, :data.n_shown]), worlds)
            trees = programs.programs_of_lengths(
                np.random.default_rng([data.seed, SPLIT_IDS[split], c]), lengths[start:stop],
                options, shown, data.n_shown)
            program_ids = np.zeros((stop - start, layout.max_program_tokens), np.int32)
            for i, tree in enumerate(trees):
                ids = tokens.encode_program(tree)
                if len(ids) > layout.max_program_tokens:
                    raise ValueError(f"data.max_program_tokens: a program of length "
                                     f"{lengths[start + i]} takes {len(ids)} tokens")
                program_ids[i, :len(ids)] = ids
            trees += [trees[0]] * (chunk_size - len(trees))
            code = bytecode.compile_batch(trees, layout.max_program_tokens)
        outputs = run_outputs(code, worlds, data.max_steps)
        m = stop - start
        yield {"program": program_ids.astype(np.uint8),
               "length": np.asarray(lengths[start:stop], np.uint8),
               "inputs": np.asarray(glyphs(worlds))[:m],
               "outputs": np.asarray(glyphs(outputs))[:m]}
