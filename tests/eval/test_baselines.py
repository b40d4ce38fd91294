"""Constant-program floors: the no-op floor and the best constant program."""
import numpy as np
import pytest

from kareljax.data import tokens
from kareljax.eval import accuracy, baselines


@pytest.fixture(scope="module")
def records(small_data):
    from kareljax.data import pipeline
    return pipeline.DatasetReader(small_data, "test").read(np.arange(60))


def test_straight_programs_enumerates_every_sequence():
    programs = baselines.straight_programs(2)
    assert len(programs) == 5 + 25 and len(set(programs)) == 30
    assert baselines.NOOP in programs


def test_rates_equal_scoring_each_program_alone(records, small_data):
    """The tiled, chunked scoring gives each program's own accuracy (tiny chunks force several)."""
    programs = [baselines.NOOP, (0,), (1, 0), (0, 0, 2)]
    rates = baselines.constant_rates(records, small_data, programs, chunk_specs=100)
    width = records["program"].shape[1]
    for program, rate in zip(programs, rates):
        ids = np.broadcast_to(tokens.encode_straight(np.array(program), width),
                              records["program"].shape)
        alone = accuracy.score(ids, records, small_data.n_shown, small_data.max_steps)
        assert rate == pytest.approx(alone["correct"].mean())


def test_noop_floor_and_best_constant(records, small_data):
    out = baselines.constant_baselines(records, small_data, max_actions=2)
    n_shown = small_data.n_shown
    unchanged = (records["outputs"][:, :n_shown] == records["inputs"][:, :n_shown]).all(
        axis=(1, 2, 3))
    assert out["noop_floor"] == pytest.approx(unchanged.mean())
    assert out["noop_floor"] <= out["best_constant"]["correct"] < 1
    assert out["best_constant"]["code"].startswith("def run() {")
