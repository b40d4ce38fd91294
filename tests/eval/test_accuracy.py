"""Accuracy of decoded programs: references score 100 %, a wrong shown example scores 0."""
import numpy as np
import pytest

from kareljax.data import tokens
from kareljax.eval import accuracy, execution


@pytest.fixture(scope="module")
def records(small_data):
    from kareljax.data import pipeline
    return pipeline.DatasetReader(small_data, "test").read(np.arange(100))


def test_reference_programs_score_100_percent(records):
    results = accuracy.score(records["program"], records, n_shown=5, max_steps=1000)
    for name in ("correct", "correct_gen", "exact", "parsed"):
        assert results[name].all(), name
    np.testing.assert_array_equal(results["generated_length"], records["length"])


def test_a_wrong_shown_example_fails_correct_and_a_held_out_one_only_correct_gen(records):
    changed = {k: v.copy() for k, v in records.items()}
    changed["outputs"][0, 2] = np.roll(changed["outputs"][0, 2], 1)    # shown example 2
    changed["outputs"][1, 7] = np.roll(changed["outputs"][1, 7], 1)    # held-out example 7
    results = accuracy.score(records["program"], changed, n_shown=5, max_steps=1000)
    assert not results["correct"][0] and not results["correct_gen"][0]
    assert results["correct"][1] and not results["correct_gen"][1]
    assert results["correct"][2:].all() and results["exact"].all()


def test_noop_program_floor_and_summary(records):
    noop = np.zeros_like(records["program"])
    noop[:, :3] = [tokens.OPEN, tokens.ACTION0 + 3, tokens.CLOSE]  # pick_marker(): changes nothing
    results = accuracy.score(noop, records, n_shown=5, max_steps=1000)
    summary = accuracy.summarize(results)
    # it solves exactly the specs whose outputs equal their inputs on the shown examples
    unchanged = (records["outputs"][:, :5] == records["inputs"][:, :5]).all(axis=(1, 2, 3))
    np.testing.assert_array_equal(results["correct"], unchanged)
    assert 0 < summary["correct"] < 0.3
    assert sum(v["programs"] for v in summary["by_length"].values()) == 100
    assert summary["mean_generated_length"] == 1.0


def test_unparseable_tokens_fail_every_example(records):
    bad = np.zeros_like(records["program"][:3])
    bad[:, :3] = [tokens.OPEN, tokens.ACTION0, tokens.ACTION0]  # never closed
    results = accuracy.score(bad, {k: v[:3] for k, v in records.items()}, 5, 1000)
    assert not results["parsed"].any() and not results["correct"].any()


def test_straight_actions_of_tokens():
    ids = np.array([[tokens.OPEN, tokens.ACTION0 + 1, tokens.ACTION0, tokens.CLOSE, 0],
                    [tokens.OPEN, tokens.CLOSE, 0, 0, 0],
                    [tokens.OPEN, tokens.ACTION0, tokens.CLOSE, tokens.ACTION0, 0]])
    actions, ok = execution.straight_actions(ids)
    assert ok.tolist() == [True, False, False]
    assert actions[0].tolist()[:3] == [1, 0, -1]
