"""ProgramOptions: effective weights, validation errors naming the option, per-length counts."""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from kareljax.data import programs as P
from kareljax.data.worlds import random_worlds


@pytest.mark.parametrize("kwargs, expected", [
    ({}, [5, 3, 3, 2, 2, 1, 1]),
    ({"uniform": True}, [1] * 7),
    ({"no_conditionals": True}, [5, 3, 3, 2, 2, 0, 0]),
    ({"no_markers": True}, [5, 3, 3, 0, 0, 1, 1]),
    # uniform comes first, then the others zero their statements (the colm preset).
    ({"uniform": True, "no_conditionals": True, "no_markers": True}, [1, 1, 1, 0, 0, 0, 0]),
    ({"base_weights": (1, 0, 0, 0, 0, 0, 2), "uniform": True}, [1] * 7),
])
def test_effective_weights(kwargs, expected):
    options = P.ProgramOptions(**kwargs)
    assert options.weights.tolist() == expected
    assert options.has_conditionals == (expected[5] + expected[6] > 0)


def test_options_are_frozen_and_lengths_inclusive():
    options = P.ProgramOptions(min_length=3, max_length=7)
    assert options.lengths == (3, 4, 5, 6, 7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.min_length = 1


@pytest.mark.parametrize("kwargs, name", [
    ({"min_length": 5, "max_length": 4}, "min_length"),
    ({"min_length": 0}, "min_length"),
    ({"max_length": 2.5}, "max_length"),
    ({"base_weights": (1, 2, 3)}, "base_weights"),
    ({"base_weights": (1, 1, 1, 1, 1, -1, 1)}, "base_weights"),
    ({"base_weights": (1.5, 1, 1, 1, 1, 1, 1)}, "base_weights"),
    ({"base_weights": (0,) * 7}, "base_weights"),
    # Only conditionals: no body and no length-1 program can be built.
    ({"base_weights": (0, 0, 0, 0, 0, 1, 1)}, "base_weights"),
    ({"base_weights": (0, 0, 0, 1, 1, 1, 1), "no_markers": True}, "base_weights"),
])
def test_bad_options_raise_naming_the_option(kwargs, name):
    with pytest.raises(ValueError, match=name):
        P.ProgramOptions(**kwargs)


def test_n_smaller_than_number_of_lengths():
    with pytest.raises(ValueError, match=r"n \(9\).*number of lengths \(10\)"):
        P.straight_line_batch(0, 9, P.ProgramOptions(no_conditionals=True))
    with pytest.raises(ValueError, match=r"n \(2\)"):
        P.conditional_programs(0, 2, P.ProgramOptions(min_length=1, max_length=3), None)


def test_straight_line_batch_rejects_conditionals():
    with pytest.raises(ValueError, match="no_conditionals"):
        P.straight_line_batch(0, 100, P.ProgramOptions())


def test_conditional_programs_worlds():
    """Device (jax) worlds work as host ones do; too few worlds or examples raise."""
    worlds = random_worlds(jax.random.key(0), (4, 10))
    options = P.ProgramOptions(max_length=4)
    host = jax.tree.map(np.asarray, worlds)
    assert P.conditional_programs(0, 4, options, worlds) == P.conditional_programs(0, 4, options, host)
    with pytest.raises(ValueError, match="worlds"):
        P.conditional_programs(0, 10, P.ProgramOptions(), worlds)
    with pytest.raises(ValueError, match="num_shown"):
        P.conditional_programs(0, 4, options, worlds, num_shown=11)


@pytest.mark.parametrize("n, lengths, each", [
    (1_000_000, range(1, 11), 100_000), (10_000, [15], 10_000), (1003, range(1, 11), 100),
    (7, range(3, 10), 1)])
def test_per_length_counts(n, lengths, each):
    assert P.per_length_counts(n, lengths) == {length: each for length in lengths}


def test_length_schedule_is_a_seeded_shuffle():
    options = P.ProgramOptions(min_length=2, max_length=6)
    a = P.length_schedule(np.random.default_rng(0), 1004, options)
    assert len(a) == 1000 and np.bincount(a).tolist() == [0, 0] + [200] * 5
    assert np.array_equal(a, P.length_schedule(np.random.default_rng(0), 1004, options))
    assert not np.array_equal(a, np.sort(a))
    assert (np.diff(a) != 0).mean() > 0.7  # well mixed: 0.8 expected for 5 lengths
