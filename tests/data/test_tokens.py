"""Vocabulary, layout, grid and program encodings (kareljax/data/tokens.py)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

from kareljax.data import tokens as T
from kareljax.karel import syntax
from kareljax.karel.syntax import Action, Cond, If, IfElse, Program, Repeat, While
from kareljax.karel.world import HERO_CHARS, World
from tests.karel import strategies as ks


# ------------------------------------------------------------------------------------ vocabulary
def test_vocabulary_is_pinned():
    # Changing the table changes every dataset and checkpoint: bump VOCAB_VERSION and this digest.
    assert (T.VOCAB_VERSION, T.VOCAB_SIZE, T.VOCAB_DIGEST) == (1, 77, "c93b29a6a9324fb6")
    assert T.PAD == 0 and T.TOKENS[0] == "<pad>"
    assert len(set(T.TOKENS)) == T.VOCAB_SIZE
    assert [T.TOKENS[T.ACTION0 + a] for a in range(5)] == list(syntax.ACTIONS)
    assert [T.TOKENS[T.COND0 + c] for c in range(5)] == list(syntax.CONDITIONS)
    assert T.TOKENS[T.COUNT0 + 19] == "x19" and T.TOKENS[T.HERO0 + 3] == "<"


def test_text_words_are_unambiguous():
    singles = {n for n in T.TOKENS if len(n) == 1}
    assert not [n for n in T.TOKENS if len(n) > 1 and set(n) <= singles]
    assert not [n for n in T.TOKENS if any(ch.isspace() for ch in n)]


# ---------------------------------------------------------------------------------------- layout
@pytest.mark.parametrize("layout, prompt, longest", [
    (T.Layout(), 373, 388),
    (T.Layout(row_separators=True), 433, 448),
    (T.Layout(4, 4), 173, 188),
    (T.Layout(4, 4, row_separators=True), 213, 228),
])
def test_layout_sizes(layout, prompt, longest):
    assert (layout.prompt_length, layout.max_length) == (prompt, longest)
    segments = layout.segments()
    assert segments[0][1] == 0
    for (_, start, size), (_, nxt, _) in zip(segments, segments[1:]):
        assert start + size == nxt
    assert segments[-1][1] + segments[-1][2] == layout.max_length


def test_layout_template_and_cells():
    for layout in (T.Layout(), T.Layout(4, 5, n_shown=3, row_separators=True)):
        pos = layout.cell_positions()
        assert pos.shape == (layout.n_shown, 2, layout.height, layout.width)
        assert len(np.unique(pos)) == pos.size
        t = layout.template()
        assert (t[pos] == T.PAD).all()
        assert (np.delete(t, pos.reshape(-1)) != T.PAD).all()  # everything else is fixed
        assert t[-2:].tolist() == [T.CODE, T.OPEN] and t[0] == T.EXAMPLES
        assert (t == T.ROW_SEP).sum() == layout.row_separators * layout.n_shown * 2 * layout.height
        for i in layout.shown:
            assert t[layout.marker(i, False)] == T.ID[f"Input{i}"]
            assert t[layout.marker(i, True)] == T.ID[f"Output{i}"]


def test_layout_examples_shown_and_held_out():
    layout = T.Layout.for_world(8, 8)
    assert layout == T.Layout(6, 6)
    assert layout.shown == (0, 1, 2, 3, 4) and layout.held_out == (5, 6, 7, 8, 9)
    with pytest.raises(ValueError):
        T.Layout(n_shown=11)


# ----------------------------------------------------------------------------------------- grids
def reference_cell(walls, markers, row, col, facing, r, c) -> int:
    """One cell's token, the slow obvious way."""
    if (r, c) == (row, col):
        return T.ID[HERO_CHARS[facing]]
    if walls[r, c]:
        return T.ID["#"]
    if markers[r, c] > 0:
        return T.ID[str(min(int(markers[r, c]), 9))]
    return T.ID["."]


def random_world_arrays(rng, shape, h, w, dtype):
    walls = rng.random(shape + (h, w)) < 0.25
    markers = np.where(rng.random(shape + (h, w)) < 0.4,
                       rng.integers(0, 14, shape + (h, w)), 0).astype(dtype)
    row = rng.integers(1, h - 1, shape)
    col = rng.integers(1, w - 1, shape)
    facing = rng.integers(0, 4, shape)
    return walls, markers, row, col, facing


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64])
def test_grid_ids_match_per_cell_reference(dtype):
    rng = np.random.default_rng(int(np.dtype(dtype).itemsize))
    for shape, h, w in (((3, 4), 8, 8), ((5,), 6, 7), ((), 3, 3)):
        arrays = random_world_arrays(rng, shape, h, w, dtype)
        got = T.grid_ids(*arrays)
        assert got.shape == shape + (h - 2, w - 2) and got.dtype == np.int32
        for idx in np.ndindex(*shape):
            walls, markers, row, col, facing = (np.asarray(a)[idx] for a in arrays)
            want = [[reference_cell(walls, markers, row, col, facing, r, c)
                     for c in range(1, w - 1)] for r in range(1, h - 1)]
            assert got[idx].tolist() == want


def test_grid_ids_on_jax_arrays_and_under_jit():
    arrays = random_world_arrays(np.random.default_rng(7), (2, 3), 8, 8, np.int32)
    want = T.grid_ids(*arrays)
    as_jax = [jnp.asarray(a) for a in arrays]
    assert np.array_equal(T.grid_ids(*as_jax), want)
    assert np.array_equal(jax.jit(T.grid_ids)(*as_jax), want)


# -------------------------------------------------------------------------------------- programs
def names(ids) -> list[str]:
    return [T.TOKENS[i] for i in ids]


def test_program_tokens_of_each_construct():
    program = Program((Action(0), If(Cond(0), (Action(1),)),
                       IfElse(Cond(3, True), (Action(2),), (Repeat(19, (Action(4),)),)),
                       While(Cond(4), (Action(3), Action(0)))))
    ids = T.encode_program(program)
    assert " ".join(names(ids)) == (
        "run{ move if front_is_clear turn_left } ifelse not markers_present turn_right } else "
        "repeat x19 put_marker } } while no_markers_present pick_marker move } }")
    assert T.decode_program(ids) == program
    assert T.decode_program(np.concatenate([ids, [T.PAD] * 3])) == program
    assert T.program_length(ids) == len(ids) and T.num_actions(ids) == 6


@settings(max_examples=150)
@given(ks.programs())
def test_random_programs_round_trip(program):
    ids = T.encode_program(program)
    assert T.decode_program(ids) == program
    assert T.program_length(np.concatenate([ids, [T.PAD] * 4])) == len(ids)
    assert T.num_actions(ids) == syntax.num_actions(program)


@pytest.mark.parametrize("words, position, expected", [
    ([], 0, "'run{'"),
    (["move", "}"], 0, "'run{'"),
    (["run{", "}"], 1, "a statement"),
    (["run{", "move"], 2, "a statement or '}'"),
    (["run{", "move", "}", "move"], 3, "only PAD"),
    (["run{", "if", "move", "}", "}"], 2, "a condition or 'not'"),
    (["run{", "if", "not", "not", "move", "}", "}"], 3, "a condition"),
    (["run{", "ifelse", "front_is_clear", "move", "}", "move", "}"], 5, "'else'"),
    (["run{", "repeat", "move", "}", "}"], 2, "a repeat count"),
    (["run{", "else", "}"], 1, "a statement"),
    (["run{", "Input0", "}"], 1, "a statement"),
])
def test_decode_rejects_invalid_sequences(words, position, expected):
    with pytest.raises(T.TokenError) as err:
        T.decode_program([T.ID[w] for w in words])
    assert err.value.position == position and expected in err.value.expected
    assert isinstance(err.value, ValueError)


def test_decode_rejects_unknown_ids():
    with pytest.raises(T.TokenError, match="<id 999>"):
        T.decode_program([T.OPEN, 999, T.CLOSE])


def test_encode_straight_matches_encode_program():
    rng = np.random.default_rng(0)
    n = rng.integers(1, 15, 200)
    actions = np.where(np.arange(14) < n[:, None], rng.integers(0, 5, (200, 14)), -1)
    got = T.encode_straight(actions)
    assert got.shape == (200, 16) and got.dtype == np.int32
    for row, acts in zip(got, actions):
        want = T.encode_program(Program(tuple(Action(int(a)) for a in acts if a >= 0)))
        assert row.tolist() == want.tolist() + [T.PAD] * (16 - len(want))
    assert np.array_equal(T.program_length(got), n + 2)
    assert np.array_equal(T.num_actions(got), n)
    assert np.array_equal(T.encode_straight(jnp.asarray(actions)), got)
    assert np.array_equal(T.encode_straight(actions[None, :, :10], length=12)[0],
                          T.encode_straight(actions[:, :10]))
    assert T.encode_straight(actions[n <= 4][:, :4], length=20).shape[-1] == 20


@pytest.mark.parametrize("actions, length", [
    ([[-1, -1]], None), ([[0, -1, 1]], None), ([[5]], None), ([[0, 1, 2]], 4)])
def test_encode_straight_rejects(actions, length):
    with pytest.raises(ValueError):
        T.encode_straight(np.array(actions), length)


def test_length_mask():
    lengths = np.arange(1, 11).reshape(2, 5)
    assert np.array_equal(T.length_mask(lengths, drop=[1, 2, 3, 4, 5]), lengths >= 6)
    assert np.array_equal(T.length_mask(lengths, keep=range(6, 11)), lengths >= 6)
    assert np.array_equal(T.length_mask(lengths, keep=range(4, 8), drop=[5]),
                          np.isin(lengths, [4, 6, 7]))
    assert T.length_mask(lengths).all()


# -------------------------------------------------------------------------------------- examples
def random_batch(seed, n, e, h=8, w=8):
    rng = np.random.default_rng(seed)
    ins = World(*random_world_arrays(rng, (n, e), h, w, np.int32))
    outs = World(ins.walls, *random_world_arrays(rng, (n, e), h, w, np.int32)[1:])
    return ins, outs


@pytest.mark.parametrize("layout", [T.Layout(), T.Layout(row_separators=True),
                                    T.Layout(4, 4, n_shown=2, max_program_tokens=30)])
def test_example_round_trips(layout):
    ins, outs = random_batch(1, 3, 10, layout.height + 2, layout.width + 2)
    programs = T.encode_straight(np.array([[0, 1, 2, -1], [4, -1, -1, -1], [3, 3, 3, 3]]))
    ids = T.encode_example(layout, ins, outs, programs)
    assert ids.shape == (3, layout.max_length)
    assert np.array_equal(ids[:, :layout.prompt_length],
                          T.encode_prompt(layout, ins, outs))
    parts = T.split_example(layout, ids)
    assert np.array_equal(parts["inputs"], T.world_ids(ins)[:, :layout.n_shown])
    assert np.array_equal(parts["outputs"], T.world_ids(outs)[:, :layout.n_shown])
    for b in range(3):
        assert T.decode_program(parts["program"][b]) == T.decode_program(programs[b])
        text = T.to_text(layout, ids[b])
        end = layout.program_start + T.program_length(parts["program"][b])
        assert np.array_equal(T.from_text(text), ids[b, :end])
    as_jax = World(*(jnp.asarray(x) for x in (ins.walls, ins.markers, ins.row, ins.col,
                                               ins.facing)))
    assert np.array_equal(T.encode_example(layout, as_jax, outs, jnp.asarray(programs)), ids)


def test_to_text_format():
    layout = T.Layout(3, 3, n_shown=1)
    walls = np.pad(np.zeros((3, 3), bool), 1, constant_values=True)
    markers = np.zeros((5, 5), np.int32)
    markers[1, 3] = 12
    start = World(walls[None], markers[None], np.array([2]), np.array([1]), np.array([1]))
    end = World(walls[None], markers[None], np.array([2]), np.array([2]), np.array([1]))
    program = T.encode_program(Program((Action(0),)))
    text = T.to_text(layout, T.encode_example(layout, start, end, program))
    assert text == ("Examples:\nInput0\n..9\n>..\n...\nOutput0\n..9\n.>.\n...\n"
                    "Code:\nrun{ move }\n")
    with pytest.raises(T.TokenError):
        T.from_text("Examples: Input0 ..9x")


def test_grid_text():
    ids = np.array([[T.WALL, T.EMPTY, T.HERO0 + 2], [T.MARKER1, T.MARKER1 + 8, T.HERO0]])
    assert T.grid_text(ids) == "#.v\n19^"


def test_program_longer_than_layout_is_rejected():
    ins, outs = random_batch(2, 1, 5)
    with pytest.raises(ValueError, match="longer than 16"):
        T.encode_example(T.Layout(), ins, outs, T.encode_straight(np.zeros((1, 15), int)))
