"""Canonical text for programs: `parse(to_text(p)) == p` for every program."""
from __future__ import annotations

from kareljax.karel import syntax


def cond_text(cond: syntax.Cond) -> str:
    text = f"{syntax.CONDITIONS[cond.kind]}()"
    return f"not {text}" if cond.negated else text


def _block(stmts: tuple[syntax.Stmt, ...], indent: int) -> str:
    pad = "  " * (indent + 1)
    inner = ";\n".join(pad + _stmt(s, indent + 1) for s in stmts)
    return "{\n" + inner + "\n" + "  " * indent + "}"


def _stmt(stmt: syntax.Stmt, indent: int) -> str:
    if isinstance(stmt, syntax.Action):
        return f"{syntax.ACTIONS[stmt.kind]}()"
    if isinstance(stmt, syntax.If):
        return f"if ({cond_text(stmt.cond)}) {_block(stmt.body, indent)}"
    if isinstance(stmt, syntax.IfElse):
        return (f"ifelse ({cond_text(stmt.cond)}) {_block(stmt.body, indent)} "
                f"else {_block(stmt.orelse, indent)}")
    if isinstance(stmt, syntax.While):
        return f"while ({cond_text(stmt.cond)}) {_block(stmt.body, indent)}"
    if isinstance(stmt, syntax.Repeat):
        return f"repeat ({stmt.times}) {_block(stmt.body, indent)}"
    raise TypeError(f"not a Karel statement: {stmt!r}")


def to_text(program: syntax.Program) -> str:
    """Multi-line canonical text, e.g. `def run() {\\n  move();\\n  turn_left()\\n}`."""
    return "def run() " + _block(program.body, 0)
