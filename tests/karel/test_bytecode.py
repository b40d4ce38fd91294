"""Direct checks of the bytecode compiler."""
from __future__ import annotations

import numpy as np
import pytest

from kareljax.karel import bytecode as bc
from kareljax.karel import syntax
from kareljax.karel.parser import parse


def test_instruction_zero_is_halt_and_padding_halts():
    code = bc.compile_batch([parse("def run() { move() }"),
                             parse("def run() { turn_left(); put_marker(); move() }")], length=7)
    assert code.code.shape == (2, 7, bc.NUM_FIELDS) and code.length == 7
    np.testing.assert_array_equal(code.code[:, 0], [[bc.HALT, 0, 0, 0, -1, 0]] * 2)
    np.testing.assert_array_equal(code.code[0, 2:], [[bc.HALT, 0, 0, 0, -1, 0]] * 5)
    np.testing.assert_array_equal(code.code[1, 4:], [[bc.HALT, 0, 0, 0, -1, 0]] * 3)


def _follow(code: np.ndarray, entry: int) -> list[tuple[int, int]]:
    """(action id, statement index) of a straight-line program, walking the NEXT links."""
    out, pc = [], entry
    while code[pc, bc.OP] != bc.HALT:
        assert code[pc, bc.OP] == bc.ACTION
        out.append((int(code[pc, bc.ARG]), int(code[pc, bc.STMT])))
        pc = code[pc, bc.NEXT]
    return out


def test_straight_line_program_links_actions_in_order():
    program = parse("def run() { turn_left(); put_marker(); move(); pick_marker() }")
    code = bc.compile_batch([program])
    assert _follow(code.code[0], code.entry[0]) == [(1, 0), (4, 1), (0, 2), (3, 3)]


def test_straight_detection_and_action_table():
    straight = [parse("def run() { move(); turn_right() }"), parse("def run() { put_marker() }")]
    code = bc.compile_batch(straight, length=5)
    assert code.straight
    np.testing.assert_array_equal(code.actions, [[0, 2, -1, -1], [4, -1, -1, -1]])
    mixed = straight + [parse("def run() { repeat(2) { move() } }")]
    assert not bc.compile_batch(mixed).straight and bc.compile_batch(mixed).actions is None
    assert not bc.compile_batch([parse("def run() { if (front_is_clear()) { move() } }")]).straight


@pytest.mark.parametrize("text, slots", [
    ("def run() { move() }", 1),
    ("def run() { repeat(2) { move() }; repeat(3) { move() } }", 1),
    ("def run() { repeat(2) { repeat(3) { move() } } }", 2),
    ("def run() { repeat(2) { while (front_is_clear()) { repeat(3) { if (markers_present())"
     " { repeat(1) { move() } } } } } }", 3),
])
def test_num_slots_is_repeat_nesting_depth(text, slots):
    code = bc.compile_batch([parse(text)])
    assert code.num_slots == slots
    repeat_slots = code.code[0][code.code[0, :, bc.OP] >= bc.REPEAT_ENTER, bc.SLOT]
    assert repeat_slots.max(initial=0) == slots - 1  # slots are 0-based nesting depths


def test_statement_indices_are_pre_order():
    program = parse("def run() { repeat(2) { ifelse (not front_is_clear()) { move() } else"
                    " { turn_left() } }; while (markers_present()) { pick_marker() } }")
    code = bc.compile_batch([program]).code[0]
    by_stmt = {}
    for row in code[1:]:
        by_stmt.setdefault(int(row[bc.STMT]), set()).add(int(row[bc.OP]))
    assert by_stmt == {0: {bc.REPEAT_ENTER, bc.REPEAT_LOOP}, 1: {bc.COND}, 2: {bc.ACTION},
                       3: {bc.ACTION}, 4: {bc.COND}, 5: {bc.ACTION}}
    assert len(code) == 8  # HALT + one per statement + the repeat's loop-back
    kinds = [type(s) for s in syntax.walk(program.body)]
    assert kinds == [syntax.Repeat, syntax.IfElse, syntax.Action, syntax.Action, syntax.While,
                     syntax.Action]
    cond = code[code[:, bc.STMT] == 1][0]
    assert cond[bc.ARG] == syntax.FRONT_IS_CLEAR + 5  # negated


def test_while_loops_back_to_its_test():
    code = bc.compile_batch([parse("def run() { while (front_is_clear()) { move() } }")])
    c, entry = code.code[0], code.entry[0]
    assert c[entry, bc.OP] == bc.COND and c[entry, bc.ALT] == 0  # false: halt
    body = c[entry, bc.NEXT]
    assert c[body, bc.OP] == bc.ACTION and c[body, bc.NEXT] == entry


def test_errors():
    with pytest.raises(ValueError):
        bc.compile_batch([])
    with pytest.raises(ValueError):
        bc.compile_batch([parse("def run() { move(); move(); move() }")], length=3)
