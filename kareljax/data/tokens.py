"""kareljax's word-level vocabulary and the token layout of one example (docs/spec.md §5).

A synthesis example (`order="synthesis"`, the paper's) is `Examples:`, then for each shown example
i `Input{i}` + interior grid of input i and `Output{i}` + interior grid of output i, then `Code:`
and the program; the `}` that closes `run{` ends the sequence. An execution-order example
(`order="execution"`, the positive control of issue 31) is `Examples:`, the shown inputs
`Input{i}` + grid, then `Code:` and the program padded with PAD to `max_program_tokens`, then the
shown outputs `Output{i}` + grid: every output comes after the program, so writing it means running
the program. One token per grid cell (row major, border not shown), optionally a `|` after every
row. A program is `run{` (= `def run() {`), one token per action, keyword, condition or repeat
count, `}` closing every block; no `( ) { ;` (the grammar forces them, so they carry nothing).
See docs/tokens.md for the table and the reasons.
"""
from __future__ import annotations

import dataclasses
import hashlib

import jax
import jax.numpy as jnp
import numpy as np

from kareljax.karel import syntax

VOCAB_VERSION = 1
NUM_EXAMPLES = 10   # worlds per program (docs/spec.md §4); the first `n_shown` are shown to the LM
MAX_SHOWN = 10

CELL_GLYPHS = "#.^>v<123456789"  # wall, empty, hero N E S W, marker counts 1..9 ("9 or more")
TOKENS: tuple[str, ...] = (
    ("<pad>", "Examples:")
    + tuple(f"Input{i}" for i in range(MAX_SHOWN))
    + tuple(f"Output{i}" for i in range(MAX_SHOWN))
    + ("Code:", "|")
    + tuple(CELL_GLYPHS)
    + ("run{", "}")
    + syntax.ACTIONS
    + ("if", "ifelse", "else", "while", "repeat", "not")
    + syntax.CONDITIONS
    + tuple(f"x{n}" for n in range(syntax.MAX_REPEAT + 1))
)
VOCAB_SIZE = len(TOKENS)
ID = {name: i for i, name in enumerate(TOKENS)}
# Changing TOKENS changes this digest; a test pins it, so any change must bump VOCAB_VERSION.
VOCAB_DIGEST = hashlib.sha256("\n".join(TOKENS).encode()).hexdigest()[:16]

PAD, EXAMPLES, CODE, ROW_SEP = ID["<pad>"], ID["Examples:"], ID["Code:"], ID["|"]
INPUT0, OUTPUT0 = ID["Input0"], ID["Output0"]
WALL, EMPTY, HERO0, MARKER1 = ID["#"], ID["."], ID["^"], ID["1"]  # HERO0 + facing; MARKER1 + n-1
OPEN, CLOSE = ID["run{"], ID["}"]
ACTION0 = ID[syntax.ACTIONS[0]]                  # ACTION0 + action id
IF, IFELSE, ELSE, WHILE, REPEAT, NOT = (ID[w] for w in ("if", "ifelse", "else", "while",
                                                           "repeat", "not"))
COND0 = ID[syntax.CONDITIONS[0]]                 # COND0 + condition id
COUNT0 = ID["x0"]                                # COUNT0 + repeat count
ACTION_IDS = np.arange(ACTION0, ACTION0 + len(syntax.ACTIONS))
PROGRAM_IDS = np.arange(OPEN, VOCAB_SIZE)        # every token a program may hold


class TokenError(ValueError):
    """A token sequence that is not a valid program (or text that is not valid token text)."""

    def __init__(self, position: int, found: str, expected: str):
        self.position, self.found, self.expected = position, found, expected
        super().__init__(f"program token {position}: expected {expected}, found {found}")


def _xp(*arrays):
    """jax.numpy when any argument is a jax array (or tracer), else numpy."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def token_name(i: int) -> str:
    return TOKENS[i] if 0 <= i < VOCAB_SIZE else f"<id {i}>"


# ------------------------------------------------------------------------------------------ layout
ORDERS = ("synthesis", "execution")


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where every token of one example goes. Sizes are of the grid *interior* (no border).

    `order="synthesis"`: inputs and outputs interleaved, then the program (the paper's task).
    `order="execution"`: the inputs, the program (PAD-filled to `max_program_tokens`, so every
    later position is fixed), then the outputs. In both, the program starts at `program_start`
    and `prompt_length` is the prefix through `run{`.
    """

    height: int = 6
    width: int = 6
    n_shown: int = 5                 # examples 0..n_shown-1 are shown, the rest held out
    row_separators: bool = False     # a `|` after every grid row
    max_program_tokens: int = 16     # `run{` + 14 actions + `}` (docs/spec.md §7)
    order: str = "synthesis"         # one of ORDERS

    def __post_init__(self):
        if self.height < 1 or self.width < 1:
            raise ValueError(f"grid interior must be at least 1x1, got {self.height}x{self.width}")
        if not 1 <= self.n_shown <= MAX_SHOWN:
            raise ValueError(f"n_shown must be in 1..{MAX_SHOWN}, got {self.n_shown}")
        if self.max_program_tokens < 3:
            raise ValueError("max_program_tokens must be >= 3 (`run{`, one action, `}`)")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")

    @classmethod
    def for_world(cls, height: int, width: int, **kw) -> "Layout":
        """The layout for worlds of height x width *including* their border ring."""
        return cls(height - 2, width - 2, **kw)

    shown = property(lambda self: tuple(range(self.n_shown)))
    held_out = property(lambda self: tuple(range(self.n_shown, NUM_EXAMPLES)))
    execution = property(lambda self: self.order == "execution")
    row_size = property(lambda self: self.width + self.row_separators)
    grid_size = property(lambda self: self.height * self.row_size)
    block_size = property(lambda self: 1 + self.grid_size)            # a marker and its grid
    example_size = property(lambda self: 2 * self.block_size)         # an input and its output
    code_marker = property(lambda self: 1 + self.n_shown * self.block_size
                           * (1 if self.execution else 2))
    program_start = property(lambda self: self.code_marker + 1)
    prompt_length = property(lambda self: self.program_start + 1)   # the prefix through `run{`
    # One past the program's slots: the end of a synthesis example, Output0 of an execution one.
    program_end = property(lambda self: self.program_start + self.max_program_tokens)
    max_length = property(lambda self: self.program_end
                          + (self.n_shown * self.block_size if self.execution else 0))

    def marker(self, i: int, output: bool) -> int:
        """Position of `Input{i}` (or `Output{i}`)."""
        if self.execution:
            return (self.program_end if output else 1) + i * self.block_size
        return 1 + i * self.example_size + output * self.block_size

    def grid_start(self, i: int, output: bool) -> int:
        return self.marker(i, output) + 1

    def markers(self) -> np.ndarray:
        """int32 [n_shown, 2 (input, output)]: the position of every `Input{i}`/`Output{i}`."""
        return np.array([[self.marker(i, o) for o in (False, True)] for i in self.shown],
                        np.int32).reshape(self.n_shown, 2)

    def cell_positions(self) -> np.ndarray:
        """int32 [n_shown, 2 (input, output), height, width]: the position of every cell."""
        r = np.arange(self.height)[None, None, :, None]
        c = np.arange(self.width)[None, None, None, :]
        return (self.markers()[:, :, None, None] + 1 + r * self.row_size + c).astype(np.int32)

    def program_positions(self) -> np.ndarray:
        """int32 [max_program_tokens]: the program's slots, `run{` first."""
        return np.arange(self.program_start, self.program_end, dtype=np.int32)

    def sequence_template(self) -> np.ndarray:
        """int32 [max_length]: every fixed token in place (markers, row separators, `Code:`,
        `run{`), cells and the program's slots after `run{` PAD."""
        t = np.full(self.max_length, PAD, np.int32)
        t[0] = EXAMPLES
        for i in self.shown:
            for o in (False, True):
                t[self.marker(i, o)] = (OUTPUT0 if o else INPUT0) + i
                if self.row_separators:
                    ends = self.grid_start(i, o) + np.arange(self.height) * self.row_size
                    t[ends + self.width] = ROW_SEP
        t[self.code_marker], t[self.program_start] = CODE, OPEN
        return t

    def template(self) -> np.ndarray:
        """int32 [prompt_length]: the prompt with every fixed token in place, cells PAD."""
        return self.sequence_template()[:self.prompt_length]

    def segments(self) -> list[tuple[str, int, int]]:
        """(name, start, length) of every segment, in order, for docs and debugging."""
        out = [("Examples:", 0, 1), ("Code:", self.code_marker, 1),
               ("program (run{ ... })", self.program_start, self.max_program_tokens)]
        for i in self.shown:
            for o, word in ((False, "Input"), (True, "Output")):
                out += [(f"{word}{i}", self.marker(i, o), 1),
                        (f"{word.lower()} grid {i}", self.grid_start(i, o), self.grid_size)]
        return sorted(out, key=lambda s: s[1])


# ------------------------------------------------------------------------------------------- grids
def grid_ids(walls, markers, row, col, facing):
    """Token ids [..., H-2, W-2] of the interiors of worlds given with their border.

    Arguments as in `kareljax.karel.world.World` (any leading batch axes, any integer marker dtype,
    numpy or jax). The hero is drawn over its cell, hiding markers; markers on walls are not shown.
    """
    xp = _xp(walls, markers, row, col, facing)
    walls, markers = xp.asarray(walls), xp.asarray(markers)
    h, w = walls.shape[-2:]
    counts = xp.minimum(markers, 9).astype(np.int32)
    cells = xp.where(walls, WALL, xp.where(counts > 0, MARKER1 - 1 + counts, EMPTY))
    row, col, facing = (xp.asarray(x).astype(np.int32)[..., None, None] for x in (row, col, facing))
    hero = (xp.arange(h)[:, None] == row) & (xp.arange(w)[None, :] == col)
    return xp.where(hero, HERO0 + facing, cells)[..., 1:-1, 1:-1].astype(np.int32)


def world_ids(world):
    """`grid_ids` of a `World` (or batch)."""
    return grid_ids(world.walls, world.markers, world.row, world.col, world.facing)


def grid_text(ids) -> str:
    """Rows of glyphs for one grid of cell ids [h, w] (the golden rendering without its border)."""
    glyphs = np.array([token_name(i) for i in range(VOCAB_SIZE)], object)
    return "\n".join("".join(glyphs[np.asarray(r)]) for r in np.asarray(ids))


# ---------------------------------------------------------------------------------------- programs
def _cond(cond: syntax.Cond) -> list[int]:
    return [NOT] * cond.negated + [COND0 + cond.kind]


def _block(stmts, out: list[int]) -> None:
    for stmt in stmts:
        _stmt(stmt, out)
    out.append(CLOSE)


def _stmt(stmt, out: list[int]) -> None:
    if isinstance(stmt, syntax.Action):
        out.append(ACTION0 + stmt.kind)
    elif isinstance(stmt, syntax.Repeat):
        if not 0 <= stmt.times <= syntax.MAX_REPEAT:
            raise ValueError(f"repeat count {stmt.times} outside 0..{syntax.MAX_REPEAT}")
        out += [REPEAT, COUNT0 + stmt.times]
        _block(stmt.body, out)
    elif isinstance(stmt, (syntax.If, syntax.IfElse, syntax.While)):
        out.append({syntax.If: IF, syntax.IfElse: IFELSE, syntax.While: WHILE}[type(stmt)])
        out += _cond(stmt.cond)
        _block(stmt.body, out)
        if isinstance(stmt, syntax.IfElse):
            out.append(ELSE)
            _block(stmt.orelse, out)
    else:
        raise TypeError(f"not a Karel statement: {stmt!r}")


def encode_program(program: syntax.Program) -> np.ndarray:
    """int32 [n]: `run{`, the statements' tokens, `}`."""
    out = [OPEN]
    _block(program.body, out)
    return np.array(out, np.int32)


class _Decoder:
    def __init__(self, ids):
        self.ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        self.pos = 0

    def take(self, expected: str, ok) -> int:
        tok = self.ids[self.pos] if self.pos < len(self.ids) else None
        if tok is None or not ok(tok):
            found = "end of tokens" if tok is None else repr(token_name(tok))
            raise TokenError(self.pos, found, expected)
        self.pos += 1
        return tok

    def block(self) -> tuple:
        stmts = [self.stmt("a statement (an action, if, ifelse, while or repeat)")]
        while self.pos >= len(self.ids) or self.ids[self.pos] != CLOSE:
            stmts.append(self.stmt("a statement or '}'"))
        self.pos += 1
        return tuple(stmts)

    def cond(self) -> syntax.Cond:
        is_cond = lambda t: COND0 <= t < COND0 + len(syntax.CONDITIONS)
        tok = self.take("a condition or 'not'", lambda t: t == NOT or is_cond(t))
        if tok == NOT:
            return syntax.Cond(self.take("a condition", is_cond) - COND0, True)
        return syntax.Cond(tok - COND0)

    def stmt(self, expected: str):
        starts = (IF, IFELSE, WHILE, REPEAT)
        tok = self.take(expected,
                        lambda t: t in starts or ACTION0 <= t < ACTION0 + len(syntax.ACTIONS))
        if tok == REPEAT:
            n = self.take(f"a repeat count x0..x{syntax.MAX_REPEAT}",
                          lambda t: COUNT0 <= t <= COUNT0 + syntax.MAX_REPEAT) - COUNT0
            return syntax.Repeat(n, self.block())
        if tok not in starts:
            return syntax.Action(tok - ACTION0)
        cond = self.cond()
        body = self.block()
        if tok == IF:
            return syntax.If(cond, body)
        if tok == WHILE:
            return syntax.While(cond, body)
        self.take("'else'", lambda t: t == ELSE)
        return syntax.IfElse(cond, body, self.block())


def decode_program(ids) -> syntax.Program:
    """The program of token ids `run{ ... }` (PADs may follow); raises TokenError if invalid."""
    d = _Decoder(ids)
    d.take("'run{'", lambda t: t == OPEN)
    body = d.block()
    for k, t in enumerate(d.ids[d.pos:]):
        if t != PAD:
            raise TokenError(d.pos + k, repr(token_name(t)), "only PAD after the final '}'")
    return syntax.Program(body)


def encode_straight(actions, length: int | None = None):
    """Program ids [..., length] of straight-line programs from action ids [..., A] (-1 padded).

    `length` defaults to A + 2; the rest is PAD. numpy input is validated (at least one action,
    padding only at the end, ids < 5, room for `}`); jax input is not.
    """
    xp = _xp(actions)
    a = xp.asarray(actions).astype(np.int32)
    width = a.shape[-1] + 2 if length is None else length
    n = (a >= 0).sum(-1)[..., None]
    if xp is np:
        valid = a >= 0
        if (n < 1).any() or (a > len(syntax.ACTIONS) - 1).any() or (a < -1).any():
            raise ValueError("every program needs >= 1 action; ids must be -1 (pad) or 0..4")
        if (np.diff(valid.astype(np.int8), axis=-1) > 0).any():
            raise ValueError("action padding (-1) must only follow the actions")
        if (n + 2 > width).any():
            raise ValueError(f"a program of {int(n.max())} actions does not fit {width} tokens")
    cols = width - 1
    a = a[..., :cols] if a.shape[-1] >= cols else xp.concatenate(
        [a, xp.full(a.shape[:-1] + (cols - a.shape[-1],), -1, np.int32)], -1)
    shifted = xp.concatenate([xp.full(a.shape[:-1] + (1,), -1, np.int32), a], -1)
    p = xp.arange(width)
    out = xp.where(p == 0, OPEN, xp.where(p <= n, ACTION0 + shifted,
                                          xp.where(p == n + 1, CLOSE, PAD)))
    return out.astype(np.int32)


_DEPTH_DELTA = np.zeros(VOCAB_SIZE, np.int32)
_DEPTH_DELTA[[OPEN, IF, IFELSE, WHILE, REPEAT, ELSE]] = 1
_DEPTH_DELTA[CLOSE] = -1


def program_length(ids):
    """Tokens [...] up to and including the `}` that closes `run{` (0 if never closed).

    `ids` [..., P] are program-segment tokens starting with `run{`, as the grammar accepts them.
    """
    xp = _xp(ids)
    depth = xp.cumsum(xp.asarray(_DEPTH_DELTA)[xp.asarray(ids)], -1)
    closed = depth <= 0
    return xp.where(closed.any(-1), xp.argmax(closed, -1) + 1, 0).astype(np.int32)


def num_actions(ids):
    """Action tokens per sequence [...]: a program's length in the sense of docs/spec.md §4."""
    xp = _xp(ids)
    ids = xp.asarray(ids)
    return ((ids >= ACTION0) & (ids < ACTION0 + len(syntax.ACTIONS))).sum(-1).astype(np.int32)


def length_mask(lengths, keep=None, drop=None) -> np.ndarray:
    """bool [...]: which programs to train on, by program length.

    `drop` is the original's `--lengths_to_filter` (lengths removed; the ICML run dropped 1..5);
    `keep`, if given, is the set of lengths allowed. E.g. `length_mask(n, keep=range(6, 11))`.
    """
    lengths = np.asarray(lengths)
    mask = np.ones(lengths.shape, bool) if keep is None else np.isin(lengths, list(keep))
    return mask & ~np.isin(lengths, list(drop or ()))


# ----------------------------------------------------------------------------------------- examples
def fill(layout: Layout, cells, program=None):
    """Whole-example ids [..., max_length] from cell ids [..., n_shown, 2 (input, output), h, w]
    and program ids [..., max_program_tokens] (from `run{`, PAD after its end; default `run{`
    alone). numpy or jax (jit-able)."""
    xp = _xp(cells) if program is None else _xp(cells, program)
    cells = xp.asarray(cells).astype(np.int32)
    batch = cells.shape[:-4]
    seq = xp.broadcast_to(xp.asarray(layout.sequence_template()), batch + (layout.max_length,))
    pos = layout.cell_positions().reshape(-1)
    flat = cells.reshape(batch + (-1,))
    if xp is np:
        seq = seq.copy()
        seq[..., pos] = flat
    else:
        seq = seq.at[..., pos].set(flat)
    if program is None:
        return seq
    program = xp.asarray(program).astype(np.int32)
    if program.shape[-1] != layout.max_program_tokens:
        raise ValueError(f"programs have {program.shape[-1]} tokens; the layout holds "
                         f"{layout.max_program_tokens}")
    program = xp.broadcast_to(program, batch + program.shape[-1:])
    return xp.concatenate([seq[..., :layout.program_start], program,
                           seq[..., layout.program_end:]], -1)


def encode_prompt(layout: Layout, inputs, outputs):
    """Prompt ids [..., prompt_length] (ending with `run{`) from worlds with batch axes [..., E].

    The first `layout.n_shown` of the E >= n_shown examples are shown (in execution order the
    prompt holds the inputs only). numpy or jax.
    """
    grids = [world_ids(w)[..., :layout.n_shown, :, :] for w in (inputs, outputs)]
    xp = _xp(*grids)
    if grids[0].shape[-3:] != (layout.n_shown, layout.height, layout.width):
        raise ValueError(f"worlds give {grids[0].shape[-3:]} (shown examples, interior h, w); "
                         f"the layout needs {(layout.n_shown, layout.height, layout.width)}")
    return fill(layout, xp.stack(grids, -3))[..., :layout.prompt_length]


def encode_example(layout: Layout, inputs, outputs, program_ids):
    """Whole-example ids [..., max_length]: `program_ids` [..., P] (from `run{`, PAD after the
    end) in the program's slots, PAD-filled; in synthesis order the example ends there, in
    execution order the outputs follow."""
    grids = [world_ids(w)[..., :layout.n_shown, :, :] for w in (inputs, outputs)]
    xp = _xp(*grids, program_ids)
    if grids[0].shape[-3:] != (layout.n_shown, layout.height, layout.width):
        raise ValueError(f"worlds give {grids[0].shape[-3:]} (shown examples, interior h, w); "
                         f"the layout needs {(layout.n_shown, layout.height, layout.width)}")
    prog = xp.asarray(program_ids).astype(np.int32)
    if xp is np and (prog[..., 0] != OPEN).any():
        raise ValueError("program ids must start with 'run{'")
    extra = layout.max_program_tokens - prog.shape[-1]
    if extra < 0:
        if xp is np and (prog[..., layout.max_program_tokens:] != PAD).any():
            raise ValueError(f"a program is longer than {layout.max_program_tokens} tokens")
        prog = prog[..., :layout.max_program_tokens]
    else:
        prog = xp.concatenate([prog, xp.full(prog.shape[:-1] + (extra,), PAD, np.int32)], -1)
    cells = xp.stack(grids, -3)
    batch = xp.broadcast_shapes(cells.shape[:-4], prog.shape[:-1])
    cells = xp.broadcast_to(cells, batch + cells.shape[-4:])
    return fill(layout, cells, xp.broadcast_to(prog, batch + prog.shape[-1:]))


def split_example(layout: Layout, ids) -> dict:
    """The parts of example ids [..., L]: `inputs`, `outputs` [..., n_shown, h, w] and `program`
    (synthesis: [..., L - program_start], the rest of the sequence; execution: the program's
    slots [..., max_program_tokens])."""
    ids = np.asarray(ids)
    cells = ids[..., layout.cell_positions()]
    end = layout.program_end if layout.execution else ids.shape[-1]
    return {"inputs": cells[..., 0, :, :], "outputs": cells[..., 1, :, :],
            "program": ids[..., layout.program_start:end]}


def to_text(layout: Layout, ids) -> str:
    """Readable text of one example's ids [L]: markers on their own lines, each grid row as a line
    of glyphs (ending with `|` if the layout has row separators), the program's words on one line
    (in execution order with the PADs that fill its slots). Trailing PADs are left out;
    `from_text` reads it back."""
    ids = np.asarray(ids).reshape(-1)
    ids = ids[:len(ids) - int(np.argmax(ids[::-1] != PAD)) if (ids != PAD).any() else 0]
    spans = [(0, 1, "")]
    for i in layout.shown:
        for o in (False, True):
            spans.append((layout.marker(i, o), layout.marker(i, o) + 1, ""))
            spans += [(s, s + layout.row_size, "") for s in
                      layout.grid_start(i, o) + layout.row_size * np.arange(layout.height)]
    program_stop = layout.program_end if layout.execution else len(ids)
    spans += [(layout.code_marker, layout.program_start, ""),
              (layout.program_start, program_stop, " ")]
    lines = [sep.join(token_name(int(t)) for t in ids[a:min(b, len(ids))])
             for a, b, sep in sorted(spans) if a < len(ids)]
    return "\n".join(lines) + "\n"


_SINGLE = {name for name in TOKENS if len(name) == 1}


def from_text(text: str) -> np.ndarray:
    """Token ids [n] of `to_text` output: whitespace-separated names; a word that is no name is
    read as a row of one-character names (grid glyphs, `|`, `}`)."""
    out = []
    for k, word in enumerate(text.split()):
        if word in ID:
            out.append(ID[word])
        elif all(ch in _SINGLE for ch in word):
            out += [ID[ch] for ch in word]
        else:
            raise TokenError(k, repr(word), "a token name or a row of grid glyphs")
    return np.array(out, np.int32)
