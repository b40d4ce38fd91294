"""Token encodings of the original's golden programs and worlds, and the size of an 8x8 example."""
from __future__ import annotations

import numpy as np
import pytest

from kareljax.data import tokens as T
from kareljax.karel import printer, world
from kareljax.karel.parser import parse
from tests.conftest import GOLDEN_FILES
from tests.karel import strategies as ks

_PUNCTUATION = {"(", ")", "{", ";"}


def expected_words(code: str) -> list[str]:
    """The program's token names derived from its text alone: `def run ( ) {` is `run{`, the
    punctuation `( ) { ;` goes, a repeat count n is `xn`."""
    words = ks.tokens_of(code)
    assert words[:5] == ["def", "run", "(", ")", "{"]
    return ["run{"] + [f"x{w}" if w.isdigit() else w for w in words[5:] if w not in _PUNCTUATION]


def interior(text: str) -> str:
    return "\n".join(line[1:-1] for line in text.split("\n")[1:-1])


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden_programs_round_trip(golden, name):
    for record in golden(name):
        program = parse(record["code"])
        ids = T.encode_program(program)
        assert [T.TOKENS[i] for i in ids] == expected_words(record["code"])
        assert T.decode_program(ids) == program
        assert parse(printer.to_text(T.decode_program(ids))) == program


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden_worlds_to_grid_tokens(golden, name):
    records = golden(name)
    texts = [e[k] for r in records for e in r["examples"] for k in ("input", "output")]
    ids = T.world_ids(world.stack([world.from_text(t) for t in texts]))  # one vectorized call
    assert ids.shape == (len(texts), 6, 6)
    for grid, text in zip(ids, texts):
        assert T.grid_text(grid) == interior(text)


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden_examples_round_trip(golden, name):
    records = golden(name)[:40]
    longest = max(len(T.encode_program(parse(r["code"]))) for r in records)
    layout = T.Layout(max_program_tokens=longest)
    for record in records:
        ins, outs = (world.stack([world.from_text(e[k]) for e in record["examples"]])
                     for k in ("input", "output"))
        program = T.encode_program(parse(record["code"]))
        ids = T.encode_example(layout, ins, outs, program)
        text = T.to_text(layout, ids)
        assert np.array_equal(T.from_text(text), ids[:layout.program_start + len(program)])
        lines = text.split("\n")
        for i in layout.shown:
            for k, key in enumerate(("input", "output")):
                start = 1 + i * 14 + k * 7
                assert lines[start] == f"{key.capitalize()}{i}"
                assert "\n".join(lines[start + 1:start + 7]) == interior(
                    record["examples"][i][key])
        assert T.decode_program(T.split_example(layout, ids)["program"]) == parse(record["code"])


def test_full_8x8_example_is_well_under_600_tokens(golden):
    programs = [parse(r["code"]) for name in GOLDEN_FILES for r in golden(name)]
    longest = max(len(T.encode_program(p)) for p in programs)
    ten = T.encode_straight(np.zeros((1, 10), int))[0]
    for separators, prompt in ((False, 373), (True, 433)):
        layout = T.Layout(row_separators=separators)
        assert layout.prompt_length == prompt
        assert layout.program_start + len(ten) == prompt + 11  # 10 actions and `}`
        assert layout.program_start + longest < 600
    assert longest == 30
    assert T.Layout().program_start + len(ten) == 384
