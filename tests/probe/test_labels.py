"""Alignment per offset and labels, on the hand-made spec; alternative-semantics labels come from
the matching interpreter runs."""
import numpy as np
import pytest

from kareljax.data import generate, grammar, tokens
from kareljax.karel import parser, reference, semantics
from kareljax.probe import collect, labels

ALTS = (0, 3, 8)


@pytest.fixture(scope="module")
def collected(spec, model):
    layout = tokens.Layout.for_world(6, 6)
    return collect.collect_batch(model, layout, spec, grammar.straight_line(14), max_steps=100,
                                 alts=ALTS, forced=True)


def test_alignment_per_offset(collected):
    # program: move; turn_right; move; pick_marker (4 actions, entries 0..4)
    each = labels.aligned(collected, common=False, offsets=(0,))
    assert each["token"].tolist() == [0, 1, 2, 3] and each["entry"][0, :, 0].tolist() == [1, 2, 3, 4]
    common = labels.aligned(collected)
    # only token 1 has entries 1 + o in 0..4 for every o in -2..2
    assert common["token"].tolist() == [1]
    assert common["entry"][:, 0, 0].tolist() == [0, 1, 2, 3, 4]
    assert labels.sample_sets(common)["samples"] == 1
    minus_one = labels.aligned(collected, offsets=(-1,))
    assert minus_one["token"].tolist() == [0, 1, 2, 3]  # the current state before each action
    assert minus_one["entry"][0, :, 0].tolist() == [0, 1, 2, 3]


def test_statement_ranges_keep_those_actions_tokens(collected):
    # program: move; turn_right; move; pick_marker (statements 0..3 start tokens 0..3)
    middle = labels.aligned(collected, offsets=(0,), common=False, statements=(1, 3))
    assert middle["token"].tolist() == [1, 2] and middle["entry"][0, :, 0].tolist() == [2, 3]
    first = labels.aligned(collected, offsets=(-1,), statements=(0, 1))
    assert first["token"].tolist() == [0] and first["entry"][0, :, 0].tolist() == [0]
    assert len(labels.aligned(collected, offsets=(0,), statements=(4, 9))["token"]) == 0


def test_labels_of_the_hand_made_trace(collected):
    samples = labels.aligned(collected, offsets=(0,), common=False)
    got = labels.labels(collected, samples, 4, 4)
    orig = {k: v[0, :, 0] for k, v in got.items()}  # offset 0, original semantics
    # states after each action: (2,3)E, (2,3)S, (3,3)S, (3,3)S; start (2,2)E, end (3,3)
    assert orig["facing"][:, 0].tolist() == [1, 2, 2, 2]
    assert orig["position"].tolist() == [[1, 2], [1, 2], [2, 2], [2, 2]]
    assert orig["start_position"].tolist() == [[5, 4], [5, 4], [5, 5], [5, 5]]  # dx+4, dy+4
    assert orig["end_position"].tolist() == [[4, 3], [4, 3], [4, 4], [4, 4]]
    assert orig["walls"].tolist() == [[0, 0, 0, 0]] * 2 + [[0, 0, 0, 0]] * 2
    assert orig["front_wall"][:, 0].tolist() == [0, 0, 0, 0]


def _reference_runs(collected, spec):
    """(semantics row, the reference interpreter's run under that alternative, the labels at
    offset 0) for each alternative of the hand-made spec."""
    program = parser.parse("def run() { move(); turn_right(); move(); pick_marker() }")
    start = generate.worlds_from_glyphs(spec["inputs"][0, 0])
    samples = labels.aligned(collected, offsets=(0,), common=False)
    got = labels.labels(collected, samples, 4, 4)
    for row, alt in enumerate(ALTS, start=1):
        yield row, reference.run(program, start, remap=semantics.ALT_MAPS[alt]), got


def test_alternative_labels_match_reference_runs(collected, spec):
    for row, run, got in _reference_runs(collected, spec):
        after = run.actions[1:5]  # entry 0 is the initial state
        assert got["facing"][0, :, row, 0].tolist() == [a.facing for a in after]
        assert got["position"][0, :, row].tolist() == [[a.row - 1, a.col - 1] for a in after]
        end = run.actions[-1]
        assert got["end_position"][0, :, row].tolist() == [
            [a.col - end.col + 4, a.row - end.row + 4] for a in after]


COND_PROGRAM = ("def run() { if (front_is_clear()) { move() }; ifelse (markers_present()) "
                "{ pick_marker() } else { turn_right() }; while (front_is_clear()) { move() } }")


@pytest.fixture(scope="module")
def cond_collected(model):
    from tests.probe.conftest import spec_of
    spec = spec_of(COND_PROGRAM, size=40)
    full = grammar.Grammar(max_tokens=40, max_depth=3)
    assert collect.has_conditions(full) and not collect.has_conditions(grammar.straight_line(14))
    layout = tokens.Layout.for_world(6, 6, max_program_tokens=40)
    return spec, collect.collect_batch(model, layout, spec, full, max_steps=100, alts=ALTS,
                                       forced=True)


def test_branch_samples_of_the_hand_made_program(cond_collected):
    _, collected = cond_collected
    samples = labels.branch_samples(collected)
    program = collected["program"][0]
    # statements in pre-order: if 0, move 1, ifelse 2, pick_marker 3, turn_right 4, while 5, move 6
    assert [tokens.TOKENS[int(program[t])] for t in samples["token"]] == [
        "if", "ifelse", "while"]
    assert collected["statement"][0, samples["token"]].tolist() == [0, 2, 5]
    # hero (2,2) facing east: front clear (move to 2,3), no marker there (turn right), then the
    # while moves twice south to the wall: first evaluations True, False, True.
    assert samples["label"][:, 0, 0].tolist() == [1, 0, 1]


def test_branch_labels_under_alternative_semantics_match_reference_runs(cond_collected):
    spec, collected = cond_collected
    program = parser.parse(COND_PROGRAM)
    start = generate.worlds_from_glyphs(spec["inputs"][0, 0])
    samples = labels.branch_samples(collected)
    stmts = collected["statement"][0, samples["token"]].tolist()
    for row, alt in enumerate(ALTS, start=1):
        run = reference.run(program, start, remap=semantics.ALT_MAPS[alt])
        first = {}
        for record in run.conds:
            first.setdefault(record.stmt, int(record.value))
        assert samples["label"][:, row, 0].tolist() == [first[s] for s in stmts]


def test_straight_line_collections_have_no_branch_samples(collected):
    assert "cond_stmt" not in collected
    assert len(labels.branch_samples(collected)["spec"]) == 0


def test_starting_frame_labels_of_the_hand_made_trace(collected):
    samples = labels.aligned(collected, offsets=(0,), common=False)
    got = labels.labels(collected, samples, 4, 4)
    # start (2,2) facing east; after each action (2,3)E, (2,3)S, (3,3)S, (3,3)S: one quarter turn
    # to the right (3 to the left) after turn_right; one step forward (east), then one to the
    # right (south, -1 to the left) of the starting pose
    assert got["turns"][0, :, 0, 0].tolist() == [0, 3, 3, 3]
    assert got["ego_start_position"][0, :, 0].tolist() == [[5, 4], [5, 4], [5, 3], [5, 3]]


def test_starting_frame_labels_under_alternative_semantics_match_reference_runs(collected, spec):
    for row, run, got in _reference_runs(collected, spec):
        first, after = run.actions[0], run.actions[1:5]
        assert got["turns"][0, :, row, 0].tolist() == [(first.facing - a.facing) % 4 for a in after]
        ahead = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}
        fr, fc = ahead[first.facing]
        lr, lc = ahead[(first.facing - 1) % 4]
        assert got["ego_start_position"][0, :, row].tolist() == [
            [(a.row - first.row) * fr + (a.col - first.col) * fc + 4,
             (a.row - first.row) * lr + (a.col - first.col) * lc + 4] for a in after]


def test_starting_pose_labels_are_the_same_at_every_token_offset_and_semantics(collected):
    got = labels.labels(collected, labels.aligned(collected), 4, 4)   # offsets -2..2
    # the hand-made spec starts at (2, 2) facing east: interior row 1, column 1, facing 1,
    # whatever the action, offset or semantics (the alternatives move the robot elsewhere)
    assert got["initial_facing"].shape == got["facing"].shape
    assert (got["initial_facing"] == 1).all()
    assert (got["initial_position"] == [1, 1]).all()
    assert (got["position"] != [1, 1]).any()


def test_starting_pose_tasks_have_their_class_counts():
    heads = {t.name: t.heads for t in labels.tasks(4, 6)}
    assert heads["initial_facing"] == (4,) and heads["initial_position"] == (4, 6)
    assert set(labels.EXTRA_TASK_NAMES) == {"turns", "ego_start_position", "initial_facing",
                                            "initial_position"}


OTHER_WORLD = """\
######
#v...#
#....#
#..1.#
#....#
######"""


@pytest.fixture(scope="module")
def two_world_collected(model):
    """`move; turn_left; move` with shown examples 0, 2, 4 on WORLD (hero (2,2) east) and 1, 3
    on OTHER_WORLD (hero (1,1) south)."""
    from tests.probe.conftest import WORLD, spec_of
    spec = spec_of("def run() { move(); turn_left(); move() }",
                   worlds=(WORLD, OTHER_WORLD) * 2 + (WORLD,) * 6)
    layout = tokens.Layout.for_world(6, 6)
    return collect.collect_batch(model, layout, spec, grammar.straight_line(14), max_steps=100,
                                 alts=ALTS, forced=True)


def test_every_example_labels_sit_side_by_side_for_one_sample(two_world_collected):
    collected = two_world_collected
    every = labels.aligned_every_example(collected, offsets=(0,))
    assert every["token"].tolist() == [0, 1, 2] and every["entries"].shape[0] == 5
    got = labels.labels_every_example(collected, every, 4, 4)
    for e in range(5):
        one = labels.labels(collected, labels.aligned(collected, offsets=(0,), example=e), 4, 4)
        for task, values in one.items():
            heads = values.shape[-1]
            np.testing.assert_array_equal(got[task][..., e * heads:(e + 1) * heads], values)


def test_labels_from_all_shown_examples(two_world_collected):
    collected = two_world_collected
    assert labels.shown_examples(collected) == 5
    every = labels.aligned(collected, offsets=(0,), common=False, example=labels.ALL_EXAMPLES)
    assert every["example"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert every["token"].tolist() == [0, 1, 2] * 5      # the same hidden states, once per example
    got = labels.labels(collected, every, 4, 4)
    facing, position = got["facing"][0, :, 0, 0], got["position"][0, :, 0]
    # WORLD: (2,3)E, (2,3)N, (1,3)N; OTHER_WORLD: (2,1)S, (2,1)E, (2,2)E (interior = row-1, col-1)
    on_world, on_other = ([1, 0, 0], [[1, 2], [1, 2], [0, 2]]), ([2, 1, 1], [[1, 0], [1, 0], [1, 1]])
    for e in range(5):
        want_facing, want_position = on_other if e % 2 else on_world
        assert facing[3 * e:3 * e + 3].tolist() == want_facing
        assert position[3 * e:3 * e + 3].tolist() == want_position
        one = labels.aligned(collected, offsets=(0,), common=False, example=e)
        alone = labels.labels(collected, one, 4, 4)
        for task, values in alone.items():
            assert (values == got[task][:, 3 * e:3 * e + 3]).all(), (task, e)


def test_an_example_the_collection_does_not_hold_is_named(two_world_collected):
    with pytest.raises(ValueError, match="example: 5 is not a shown example"):
        labels.aligned(two_world_collected, example=5)


def test_branch_samples_from_all_shown_examples(cond_collected):
    _, collected = cond_collected
    one = labels.branch_samples(collected)
    every = labels.branch_samples(collected, example=labels.ALL_EXAMPLES)
    assert len(every["spec"]) == 5 * len(one["spec"])
    assert every["example"].tolist() == sorted(list(range(5)) * len(one["spec"]))
    assert (every["label"][:len(one["spec"])] == one["label"]).all()


def test_correct_only_keeps_the_samples_of_correct_programs(two_world_collected, cond_collected):
    for collected in (two_world_collected, cond_collected[1]):
        wrong = {**collected, "correct": np.zeros_like(collected["correct"])}
        right = {**collected, "correct": np.ones_like(collected["correct"])}
        every = labels.aligned(collected, offsets=(0,), common=False)
        assert len(every["spec"]) > 0
        assert len(labels.aligned(wrong, offsets=(0,), common=False, correct_only=True)["spec"]) == 0
        kept = labels.aligned(right, offsets=(0,), common=False, correct_only=True)
        assert kept["token"].tolist() == every["token"].tolist()
    branch = labels.branch_samples(cond_collected[1])
    assert len(branch["spec"]) == 3
    wrong = {**cond_collected[1], "correct": np.zeros_like(cond_collected[1]["correct"])}
    assert len(labels.branch_samples(wrong, correct_only=True)["spec"]) == 0
