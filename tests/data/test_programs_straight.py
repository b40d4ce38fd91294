"""Straight-line program batches: lengths, weights, no_noops bans, seeding, layouts, golden file."""
from __future__ import annotations

import numpy as np
import pytest

from kareljax.data import programs as P
from kareljax.karel import bytecode, parser, syntax
from tests.data.programs_util import ALPHA, goodness_of_fit, homogeneity, kind_counts

STRAIGHT = P.ProgramOptions(no_conditionals=True)
NO_NOOPS = P.ProgramOptions(no_conditionals=True, no_noops=True)


@pytest.mark.parametrize("n, options", [
    (1003, STRAIGHT), (500, P.ProgramOptions(no_conditionals=True, min_length=15, max_length=15)),
    (998, P.ProgramOptions(no_conditionals=True, no_noops=True, min_length=4, max_length=9))])
def test_exact_lengths_and_padding(n, options):
    actions, lengths = P.straight_line_batch(0, n, options)
    k = len(options.lengths)
    assert actions.shape == (n // k * k, options.max_length) and lengths.shape == (n // k * k,)
    assert np.bincount(lengths, minlength=options.max_length + 1)[list(options.lengths)].tolist() \
        == [n // k] * k
    inside = np.arange(options.max_length)[None] < lengths[:, None]
    assert (actions[inside] >= 0).all() and (actions[inside] < 5).all()
    assert (actions[~inside] == -1).all()
    if k > 1:  # shuffled, not grouped by length
        assert (np.diff(lengths) != 0).mean() > 0.6


@pytest.mark.parametrize("options", [
    STRAIGHT,
    P.ProgramOptions(no_conditionals=True, uniform=True),
    P.ProgramOptions(no_conditionals=True, no_markers=True),
    P.ProgramOptions(no_conditionals=True, no_markers=True, uniform=True),
], ids=["base", "uniform", "no_markers", "colm"])
def test_statement_frequencies_follow_weights(options):
    actions, _ = P.straight_line_batch(1, 20_000, options)
    counts = np.bincount(actions[actions >= 0], minlength=5)
    assert goodness_of_fit(counts, options.weights[:5]) > ALPHA


@pytest.mark.parametrize("options", [NO_NOOPS, P.ProgramOptions(
    no_conditionals=True, no_noops=True, uniform=True, min_length=15, max_length=15)])
def test_no_noops_bans_hold(options):
    actions, lengths = P.straight_line_batch(2, 5000, options)
    inverse = {1: 2, 2: 1, 3: 4, 4: 3}
    for row, size in zip(actions.tolist(), lengths.tolist()):
        banned = set()
        for a in row[:size]:
            assert a not in banned, row
            banned = set() if a == syntax.MOVE else banned | {inverse[a]}
    # Repeats stay allowed, and the bans last until a move: turn_left; pick_marker; turn_right
    # never occurs, turn_left; turn_left does.
    text = [" ".join(map(str, r[:size])) for r, size in zip(actions.tolist(), lengths.tolist())]
    assert any("1 1" in t for t in text) and not any("1 3 2" in t for t in text)


def test_no_noops_renormalises_the_allowed_weights():
    """After turn_left (first action), the second action follows the weights without turn_right."""
    actions, lengths = P.straight_line_batch(3, 40_000, NO_NOOPS)
    second = actions[(actions[:, 0] == syntax.TURN_LEFT) & (lengths >= 2), 1]
    counts = np.bincount(second, minlength=5)
    assert counts[syntax.TURN_RIGHT] == 0
    assert goodness_of_fit(counts, [5, 3, 0, 2, 2]) > ALPHA


def test_seeded():
    a = P.straight_line_batch(7, 2000, STRAIGHT)
    b = P.straight_line_batch(np.random.default_rng(7), 2000, STRAIGHT)
    c = P.straight_line_batch(8, 2000, STRAIGHT)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])
    with pytest.raises(TypeError):
        P.straight_line_batch(7.5, 2000, STRAIGHT)


def test_trees_and_bytecode_match_the_compiler():
    actions, lengths = P.straight_line_batch(4, 300, STRAIGHT)
    programs = P.programs_from_actions(actions, lengths)
    assert [syntax.num_actions(p) for p in programs] == lengths.tolist()
    assert all(syntax.is_straight_line(p) for p in programs)
    # Every statement is its own node (statement indices are keyed by node identity).
    assert all(len(syntax.statement_indices(p)) == len(p.body) for p in programs)
    assert np.array_equal(bytecode.straight_line_code(programs, STRAIGHT.max_length), actions)
    expected = bytecode.compile_batch(programs, STRAIGHT.max_length + 1)
    got = P.straight_line_bytecode(actions, lengths)
    assert got.straight and got.num_slots == expected.num_slots
    for field in ("code", "entry", "actions"):
        assert np.array_equal(getattr(got, field), getattr(expected, field)), field
    assert np.array_equal(P.straight_line_bytecode(actions).code, got.code)


def test_golden_straight_distribution(golden):
    """The original's ICML file: 200 programs per length 1-10, statement kinds as ours."""
    theirs = [parser.parse(r["code"]) for r in golden("straight")]
    lengths = [P.program_length(p) for p in theirs]
    assert np.bincount(lengths).tolist() == [0] + [200] * 10
    actions, ours_lengths = P.straight_line_batch(5, len(theirs), STRAIGHT)
    assert np.bincount(ours_lengths).tolist() == [0] + [200] * 10
    ours = np.bincount(actions[actions >= 0], minlength=5)
    theirs_counts = kind_counts(theirs)[:5]
    assert homogeneity(ours, theirs_counts) > ALPHA
    np.testing.assert_allclose(ours / ours.sum(), theirs_counts / theirs_counts.sum(), atol=0.02)
    assert goodness_of_fit(theirs_counts, STRAIGHT.weights[:5]) > ALPHA
