"""Fresh on-device batches: seeded by (seed, step), right outputs, one compilation."""
import chex
import jax
import numpy as np
import pytest

from kareljax import config_files
from kareljax.data import dataset_config, fresh, generate, programs, tokens
from kareljax.karel import reference


@pytest.fixture(scope="module")
def data():
    return config_files.load("icml_cpu", ["data.no_noops=True"]).data


@pytest.fixture(scope="module")
def make(data):
    return fresh.fresh_batches(data, 64)


def test_seeded_by_seed_and_step(make):
    a, b, c, d = make(0, 5), make(0, 5), make(0, 6), make(1, 5)
    assert (a["tokens"] == b["tokens"]).all()
    assert not (a["tokens"] == c["tokens"]).all() and not (a["tokens"] == d["tokens"]).all()


def test_outputs_equal_the_reference_interpreter(data, make):
    layout = dataset_config.layout(data)
    batch = jax.tree.map(np.asarray, make(0, 1))
    cells = layout.cell_positions()  # [shown, 2, h, w]
    for ids, length in zip(batch["tokens"], batch["length"]):
        program = tokens.decode_program(ids[layout.program_start:])
        assert len(program.body) == length and length in data.train_lengths
        kinds = [s.kind for s in program.body]
        for a, b in zip(kinds, kinds[1:]):  # no_noops: no action followed by its inverse
            assert programs.INVERSE.get(a) != b
        for e in range(layout.n_shown):
            grid_in = ids[cells[e, 0]] - tokens.WALL
            grid_out = ids[cells[e, 1]] - tokens.WALL
            final = reference.run(program, generate.worlds_from_glyphs(grid_in)).world
            np.testing.assert_array_equal(np.asarray(generate.glyphs(final)), grid_out)


def test_compiles_once(data):
    make = fresh.fresh_batches(data, 8)
    counted = chex.assert_max_traces(make.__wrapped__, n=1)
    jitted = jax.jit(counted)
    jitted(0, 0)
    jitted(3, 9)


def test_rejects_conditionals():
    data = config_files.load("cond_cpu").data
    with pytest.raises(dataset_config.ConfigError, match="no_conditionals"):
        fresh.fresh_batches(data, 8)
