"""The Karel program tree: immutable dataclasses that compare by value.

Names of actions and conditions are fixed tuples; their positions are the integer ids used by the
bytecode, the world and the alternative-semantics tables.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator, Union

ACTIONS = ("move", "turn_left", "turn_right", "pick_marker", "put_marker")
MOVE, TURN_LEFT, TURN_RIGHT, PICK_MARKER, PUT_MARKER = range(5)

CONDITIONS = (
    "front_is_clear",
    "left_is_clear",
    "right_is_clear",
    "markers_present",
    "no_markers_present",
)
FRONT_IS_CLEAR, LEFT_IS_CLEAR, RIGHT_IS_CLEAR, MARKERS_PRESENT, NO_MARKERS_PRESENT = range(5)

MAX_REPEAT = 19


@dataclasses.dataclass(frozen=True)
class Cond:
    """A condition id (index into CONDITIONS), optionally negated."""

    kind: int
    negated: bool = False


@dataclasses.dataclass(frozen=True)
class Action:
    kind: int  # index into ACTIONS


@dataclasses.dataclass(frozen=True)
class If:
    cond: Cond
    body: tuple["Stmt", ...]


@dataclasses.dataclass(frozen=True)
class IfElse:
    cond: Cond
    body: tuple["Stmt", ...]
    orelse: tuple["Stmt", ...]


@dataclasses.dataclass(frozen=True)
class While:
    cond: Cond
    body: tuple["Stmt", ...]


@dataclasses.dataclass(frozen=True)
class Repeat:
    times: int
    body: tuple["Stmt", ...]


Stmt = Union[Action, If, IfElse, While, Repeat]


@dataclasses.dataclass(frozen=True)
class Program:
    body: tuple[Stmt, ...]


def children(stmt: Stmt) -> tuple[Stmt, ...]:
    """Nested statements of `stmt` in program order (then-body before else-body)."""
    if isinstance(stmt, IfElse):
        return stmt.body + stmt.orelse
    if isinstance(stmt, (If, While, Repeat)):
        return stmt.body
    return ()


def walk(stmts: tuple[Stmt, ...]) -> Iterator[Stmt]:
    """All statements in pre-order: the order of their first tokens in the text.

    The position of a statement in this order is its *statement index*, which traces record.
    """
    for stmt in stmts:
        yield stmt
        yield from walk(children(stmt))


def statement_indices(program: Program) -> dict[int, int]:
    """Maps id(stmt) to its pre-order statement index."""
    return {id(s): i for i, s in enumerate(walk(program.body))}


def num_actions(program: Program) -> int:
    """The program's length in the sense of docs/spec.md §4: action statements, nested ones included."""
    return sum(isinstance(s, Action) for s in walk(program.body))


def is_straight_line(program: Program) -> bool:
    return all(isinstance(s, Action) for s in program.body)


def repeat_depth(stmts: tuple[Stmt, ...]) -> int:
    """Deepest nesting of repeat statements (the loop counters a run needs)."""
    best = 0
    for s in stmts:
        inner = repeat_depth(children(s))
        best = max(best, inner + 1 if isinstance(s, Repeat) else inner)
    return best
