"""Parser and printer: every construct, round trips (golden and random trees), and syntax errors."""
from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings, strategies as st

from kareljax.karel import syntax
from kareljax.karel.parser import KarelSyntaxError, parse
from kareljax.karel.printer import to_text
from kareljax.karel.syntax import Action, Cond, If, IfElse, Program, Repeat, While
from tests.conftest import GOLDEN_FILES
from tests.karel import strategies as ks

MOVE, LEFT, RIGHT, PICK, PUT = (Action(i) for i in range(5))


@pytest.mark.parametrize("text, body", [
    ("def run() { move() }", (MOVE,)),
    ("def run() { move(); turn_left(); turn_right(); pick_marker(); put_marker() }",
     (MOVE, LEFT, RIGHT, PICK, PUT)),
    ("def run() { if (front_is_clear()) { move() } }", (If(Cond(0), (MOVE,)),)),
    ("def run() { if (not left_is_clear()) { turn_left(); move() } }",
     (If(Cond(1, True), (LEFT, MOVE)),)),
    ("def run() { ifelse (right_is_clear()) { turn_right() } else { pick_marker() } }",
     (IfElse(Cond(2), (RIGHT,), (PICK,)),)),
    ("def run() { while (markers_present()) { pick_marker() } }", (While(Cond(3), (PICK,)),)),
    ("def run() { while (not no_markers_present()) { put_marker() } }",
     (While(Cond(4, True), (PUT,)),)),
    ("def run() { repeat(0) { move() } }", (Repeat(0, (MOVE,)),)),
    ("def run() { repeat(19) { move() } }", (Repeat(19, (MOVE,)),)),
    ("def run() { repeat(3) { repeat(2) { if (front_is_clear()) { move() } }; turn_left() }; put_marker() }",
     (Repeat(3, (Repeat(2, (If(Cond(0), (MOVE,)),)), LEFT)), PUT)),
    ("def run ( ) { move ( ) ; turn_left ( ) }", (MOVE, LEFT)),
    ("def\trun(){move();turn_left()}", (MOVE, LEFT)),
    ("\n\ndef run()\n{\r\n  move();\n\n  turn_left()\n}\n", (MOVE, LEFT)),
])
def test_parses_each_construct(text, body):
    assert parse(text) == Program(body)


def test_canonical_text_format():
    program = Program((MOVE, IfElse(Cond(3, True), (LEFT,), (Repeat(2, (PUT,)),))))
    assert to_text(program) == (
        "def run() {\n"
        "  move();\n"
        "  ifelse (not markers_present()) {\n"
        "    turn_left()\n"
        "  } else {\n"
        "    repeat (2) {\n"
        "      put_marker()\n"
        "    }\n"
        "  }\n"
        "}")


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden_programs_round_trip(golden, name):
    records = golden(name)
    for record in records:
        program = parse(record["code"])
        assert ks.tokens_of(record["code"]) == ks.program_tokens(program), record["code"]
        assert parse(to_text(program)) == program
        assert parse(ks.spaced_text(program)) == program
    assert len(records) > 0


def test_golden_spaced_style_matches_strategy_rendering(golden):
    """The token renderer reproduces the golden files' `def run ( ) { move ( ) ; ... }` style."""
    spaced = [r["code"] for r in golden("loops") if r["code"].startswith("def run ( )")]
    assert spaced
    for code in spaced:
        assert ks.spaced_text(parse(code)) == code


@given(ks.programs())
def test_random_trees_round_trip(program):
    text = to_text(program)
    assert parse(text) == program
    assert to_text(parse(text)) == text
    assert parse(ks.spaced_text(program)) == program


@settings(max_examples=60)
@given(st.data())
def test_whitespace_varied_rendering_round_trips(data):
    program = data.draw(ks.programs())
    assert parse(data.draw(ks.whitespace_varied(program))) == program


# --------------------------------------------------------------------------------------- errors
def _offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    assert 1 <= line <= len(lines) and 1 <= column <= len(lines[line - 1]) + 1
    return sum(len(l) + 1 for l in lines[:line - 1]) + column - 1


def assert_well_formed_error(text: str, err: KarelSyntaxError) -> int:
    """The error names a real position and what is there; returns the position's offset."""
    at = _offset(text, err.line, err.column)
    if err.found == "end of input":
        assert text[at:].strip(" \t\n\r") == ""
    else:
        found = ast.literal_eval(err.found)
        assert found and text.startswith(found, at)
    assert isinstance(err.expected, str) and err.expected
    message = str(err)
    for part in (f"line {err.line}", f"column {err.column}", err.found, err.expected):
        assert part in message
    return at


@pytest.mark.parametrize("text, line, column, found, expected", [
    ("", 1, 1, "end of input", "'def'"),
    ("run() { move() }", 1, 1, "'run'", "'def'"),
    ("def run() {}", 1, 12, "'}'", "statement"),
    ("def run() { move(); }", 1, 21, "'}'", "statement"),
    ("def run() { move() move() }", 1, 20, "'move'", "';'"),
    ("def run() { move()", 1, 19, "end of input", "'}'"),
    ("def run() { move() } }", 1, 22, "'}'", "end of input"),
    ("def run() {\n  move();\n  jump()\n}", 3, 3, "'jump'", "statement"),
    ("def run() { Move() }", 1, 13, "'Move'", "statement"),
    ("def run() { move() $ }", 1, 20, "'$'", "token"),
    ("def run() {\n\tmove() @\n}", 2, 9, "'@'", "token"),
    ("def run() { repeat(20) { move() } }", 1, 20, "'20'", "0..19"),
    ("def run() { repeat(x) { move() } }", 1, 20, "'x'", "repeat count"),
    ("def run() { if (not not front_is_clear()) { move() } }", 1, 21, "'not'", "condition"),
    ("def run() { if (move()) { move() } }", 1, 17, "'move'", "condition"),
    ("def run() { ifelse (markers_present()) { move() } }", 1, 51, "'}'", "'else'"),
    ("def run() { if (markers_present()) { move() } else { move() } }", 1, 47, "'else'", "';'"),
    ("def run() { while (front_is_clear) { move() } }", 1, 34, "')'", "'('"),
    ("def run() { move(); ; move() }", 1, 21, "';'", "statement"),
])
def test_error_names_line_column_found_expected(text, line, column, found, expected):
    with pytest.raises(KarelSyntaxError) as info:
        parse(text)
    err = info.value
    assert (err.line, err.column, err.found) == (line, column, found)
    assert expected in err.expected
    assert_well_formed_error(text, err)
    assert isinstance(err, ValueError)


UNKNOWN_CHARS = "$@#!?-+*/.,:=<>[]\"'`~%&|\\\x00\x0b\x0céλ"
INSERTABLE = UNKNOWN_CHARS + "(){};0123456789 \n\tabmnortuvx_"
VOCABULARY = (("def", "run", "(", ")", "{", "}", ";", "not", "else", "if", "ifelse", "while",
               "repeat", "0", "7", "19", "20", "x") + syntax.ACTIONS + syntax.CONDITIONS)


@st.composite
def mutated_texts(draw):
    """Valid program text damaged by one random character- or token-level edit."""
    program = draw(ks.programs(max_leaves=6))
    text = draw(st.sampled_from([to_text(program), ks.spaced_text(program)]))
    tokens = ks.program_tokens(program)
    kind = draw(st.sampled_from(["delete_char", "insert_char", "replace_char", "delete_token",
                                 "insert_token", "replace_token", "swap_tokens", "truncate"]))
    if kind.endswith("_char") or kind == "truncate":
        i = draw(st.integers(0, len(text) - (0 if kind == "insert_char" else 1)))
        ch = draw(st.sampled_from(INSERTABLE))
        return {"delete_char": text[:i] + text[i + 1:], "insert_char": text[:i] + ch + text[i:],
                "replace_char": text[:i] + ch + text[i + 1:], "truncate": text[:i]}[kind]
    i = draw(st.integers(0, len(tokens) - 1))
    word = draw(st.sampled_from(VOCABULARY))
    if kind == "delete_token":
        tokens = tokens[:i] + tokens[i + 1:]
    elif kind == "insert_token":
        tokens = tokens[:i] + [word] + tokens[i:]
    elif kind == "replace_token":
        tokens = tokens[:i] + [word] + tokens[i + 1:]
    else:
        j = min(i + 1, len(tokens) - 1)
        tokens[i], tokens[j] = tokens[j], tokens[i]
    return " ".join(tokens)


@settings(max_examples=150)
@given(mutated_texts())
def test_mutated_text_parses_faithfully_or_raises_syntax_error(text):
    """Only KarelSyntaxError escapes; accepted text is exactly the tokens of what was parsed."""
    try:
        program = parse(text)
    except KarelSyntaxError as err:
        assert_well_formed_error(text, err)
        return
    assert all(ch not in text for ch in UNKNOWN_CHARS)
    assert ks.tokens_of(text) == ks.program_tokens(program)


@settings(max_examples=60)
@given(st.data())
def test_unknown_characters_are_never_skipped(data):
    program = data.draw(ks.programs(max_leaves=6))
    text = data.draw(st.sampled_from([to_text(program), ks.spaced_text(program)]))
    i = data.draw(st.integers(0, len(text)))
    ch = data.draw(st.sampled_from(UNKNOWN_CHARS))
    bad = text[:i] + ch + text[i:]
    with pytest.raises(KarelSyntaxError) as info:
        parse(bad)
    at = assert_well_formed_error(bad, info.value)
    assert at <= i
    if at == i:
        assert info.value.found == repr(ch)


def _nested_repeats(depth: int) -> str:
    return "def run() {" + "repeat(2) {" * (depth - 1) + "move()" + "}" * depth


def test_nesting_up_to_the_limit_parses_and_deeper_is_a_syntax_error():
    from kareljax.karel.parser import MAX_NESTING
    program = parse(_nested_repeats(MAX_NESTING))
    depth, body = 1, program.body
    while isinstance(body[0], Repeat):
        depth, body = depth + 1, body[0].body
    assert depth == MAX_NESTING
    with pytest.raises(KarelSyntaxError, match=f"blocks nested at most {MAX_NESTING} deep"):
        parse(_nested_repeats(MAX_NESTING + 1))
    # 10,000 deep: the same error, not Python's RecursionError.
    with pytest.raises(KarelSyntaxError, match="nested"):
        parse(_nested_repeats(10_000))
