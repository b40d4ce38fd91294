"""Parser for Karel's curly syntax (docs/spec.md §2).

Every malformed input raises `KarelSyntaxError` naming the line, the column, what was found and what
was expected. Unknown characters are errors, never skipped. Blocks nest at most `MAX_NESTING` deep
(far beyond any generated program; the parser, printer and interpreters recurse over the tree, so a
deeper program is refused here, as a syntax error, instead of exhausting Python's stack later).
"""
from __future__ import annotations

import dataclasses
import re

from kareljax.karel import syntax

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|[0-9]+|[(){};]")
_WHITESPACE = " \t\n\r"
MAX_NESTING = 100   # blocks inside blocks, `run`'s own block counted


class KarelSyntaxError(ValueError):
    """A malformed Karel program."""

    def __init__(self, line: int, column: int, found: str, expected: str):
        self.line, self.column, self.found, self.expected = line, column, found, expected
        super().__init__(f"line {line}, column {column}: expected {expected}, found {found}")


@dataclasses.dataclass(frozen=True)
class Token:
    text: str
    line: int
    column: int


def tokenize(text: str) -> list[Token]:
    """Splits text into tokens; the last token is the empty end-of-input token."""
    tokens, line, line_start, i = [], 1, 0, 0
    while i < len(text):
        ch = text[i]
        if ch in _WHITESPACE:
            if ch == "\n":
                line, line_start = line + 1, i + 1
            i += 1
            continue
        match = _TOKEN.match(text, i)
        if match is None:
            raise KarelSyntaxError(line, i - line_start + 1, repr(ch), "a Karel token")
        tokens.append(Token(match.group(), line, i - line_start + 1))
        i = match.end()
    tokens.append(Token("", line, i - line_start + 1))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    @property
    def peek(self) -> Token:
        return self.tokens[self.pos]

    def fail(self, expected: str):
        tok = self.peek
        found = repr(tok.text) if tok.text else "end of input"
        raise KarelSyntaxError(tok.line, tok.column, found, expected)

    def expect(self, *texts: str) -> Token:
        tok = self.peek
        if tok.text not in texts:
            self.fail(" or ".join(repr(t) for t in texts))
        self.pos += 1
        return tok

    def program(self) -> syntax.Program:
        self.expect("def")
        self.expect("run")
        self.expect("(")
        self.expect(")")
        body = self.block()
        if self.peek.text:
            self.fail("end of input")
        return syntax.Program(body)

    def block(self) -> tuple[syntax.Stmt, ...]:
        if self.depth == MAX_NESTING:
            tok = self.peek
            raise KarelSyntaxError(tok.line, tok.column, f"a block nested {MAX_NESTING + 1} deep",
                                   f"blocks nested at most {MAX_NESTING} deep")
        self.expect("{")
        self.depth += 1
        stmts = [self.stmt()]
        while self.peek.text == ";":
            self.pos += 1
            stmts.append(self.stmt())
        self.expect("}", ";")
        self.depth -= 1
        return tuple(stmts)

    def stmt(self) -> syntax.Stmt:
        word = self.peek.text
        if word in syntax.ACTIONS:
            self.pos += 1
            self.expect("(")
            self.expect(")")
            return syntax.Action(syntax.ACTIONS.index(word))
        if word in ("if", "ifelse", "while"):
            self.pos += 1
            self.expect("(")
            cond = self.cond()
            self.expect(")")
            body = self.block()
            if word == "if":
                return syntax.If(cond, body)
            if word == "while":
                return syntax.While(cond, body)
            self.expect("else")
            return syntax.IfElse(cond, body, self.block())
        if word == "repeat":
            self.pos += 1
            self.expect("(")
            tok = self.peek
            if not tok.text.isdigit() or int(tok.text) > syntax.MAX_REPEAT:
                self.fail(f"a repeat count in 0..{syntax.MAX_REPEAT}")
            self.pos += 1
            self.expect(")")
            return syntax.Repeat(int(tok.text), self.block())
        self.fail("a statement (an action, if, ifelse, while or repeat)")

    def cond(self) -> syntax.Cond:
        negated = self.peek.text == "not"
        if negated:
            self.pos += 1
        word = self.peek.text
        if word not in syntax.CONDITIONS:
            self.fail("a condition" if negated else "a condition or 'not'")
        self.pos += 1
        self.expect("(")
        self.expect(")")
        return syntax.Cond(syntax.CONDITIONS.index(word), negated)


def parse(text: str) -> syntax.Program:
    """Parses curly-syntax text into a Program, or raises KarelSyntaxError."""
    if not isinstance(text, str):
        raise TypeError(f"parse() takes program text, not {type(text).__name__}")
    return _Parser(text).program()
