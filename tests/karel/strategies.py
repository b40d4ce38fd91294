"""Hypothesis strategies over the Karel syntax tree, and token-level renderings of programs."""
from __future__ import annotations

import random
import re

from hypothesis import strategies as st

from kareljax.karel import syntax

conds = st.builds(syntax.Cond, st.integers(0, len(syntax.CONDITIONS) - 1), st.booleans())
actions = st.builds(syntax.Action, st.integers(0, len(syntax.ACTIONS) - 1))


def _blocks(stmts, max_size: int):
    return st.lists(stmts, min_size=1, max_size=max_size).map(tuple)


def statements(max_leaves: int = 12, max_block: int = 3):
    """Any statement: actions, if, ifelse, while and repeat (counts 0..MAX_REPEAT), nested."""
    def extend(inner):
        block = _blocks(inner, max_block)
        return st.one_of(
            st.builds(syntax.If, conds, block),
            st.builds(syntax.IfElse, conds, block, block),
            st.builds(syntax.While, conds, block),
            st.builds(syntax.Repeat, st.integers(0, syntax.MAX_REPEAT), block))
    return st.recursive(actions, extend, max_leaves=max_leaves)


def programs(max_leaves: int = 12, max_block: int = 3, max_body: int = 4):
    return _blocks(statements(max_leaves, max_block), max_body).map(syntax.Program)


straight_programs = _blocks(actions, 12).map(syntax.Program)


# ---------------------------------------------------------------------------------- token renderings
def _block_tokens(stmts) -> list[str]:
    out = ["{"]
    for i, s in enumerate(stmts):
        if i:
            out.append(";")
        out += _stmt_tokens(s)
    return out + ["}"]


def _cond_tokens(cond: syntax.Cond) -> list[str]:
    return (["not"] if cond.negated else []) + [syntax.CONDITIONS[cond.kind], "(", ")"]


def _stmt_tokens(stmt) -> list[str]:
    if isinstance(stmt, syntax.Action):
        return [syntax.ACTIONS[stmt.kind], "(", ")"]
    if isinstance(stmt, syntax.Repeat):
        return ["repeat", "(", str(stmt.times), ")"] + _block_tokens(stmt.body)
    word = {syntax.If: "if", syntax.IfElse: "ifelse", syntax.While: "while"}[type(stmt)]
    out = [word, "("] + _cond_tokens(stmt.cond) + [")"] + _block_tokens(stmt.body)
    if isinstance(stmt, syntax.IfElse):
        out += ["else"] + _block_tokens(stmt.orelse)
    return out


def program_tokens(program: syntax.Program) -> list[str]:
    """The program's token sequence (independent of the printer)."""
    return ["def", "run", "(", ")"] + _block_tokens(program.body)


def spaced_text(program: syntax.Program) -> str:
    """The golden files' second style: `def run ( ) { move ( ) ; turn_left ( ) }`."""
    return " ".join(program_tokens(program))


_WORDY = re.compile(r"[A-Za-z_0-9]")
_SPACES = (" ", "", "", "\t", "\n", "\r\n", "  \n\t ")


@st.composite
def whitespace_varied(draw, program: syntax.Program) -> str:
    """The program's tokens joined by random whitespace (at least one char between two words)."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # one draw: fast, reproducible
    tokens = program_tokens(program)
    parts = [rng.choice(_SPACES)]
    for left, right in zip(tokens, tokens[1:]):
        sep = rng.choice(_SPACES)
        if not sep and _WORDY.match(left[-1]) and _WORDY.match(right[0]):
            sep = " "
        parts += [left, sep]
    return "".join(parts + [tokens[-1], rng.choice(_SPACES)])


_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|[0-9]+|[(){};]")


def tokens_of(text: str) -> list[str]:
    """Tokens of text known to hold only token characters and whitespace; numbers normalised."""
    return [str(int(t)) if t.isdigit() else t for t in _TOKEN.findall(text)]

