"""The states of a program's shown worlds while it is being generated (plain Python, tiny worlds).

The conditional generator needs, after every statement drawn so far, each shown world's state: to
know which worlds reach a block, and (under no_noops) which conditions split them. A `ShownState`
is one world with a flattened grid (cell = row * width + col), mutated in place.
"""
from __future__ import annotations

import numpy as np

from kareljax.karel import syntax


class ShownState:
    """One world's state: walls and markers as flat lists, the hero as a cell and a facing."""

    __slots__ = ("walls", "markers", "cell", "facing", "steps")

    def __init__(self, walls: list, markers: list, row: int, col: int, facing: int, width: int):
        self.walls = walls
        self.markers = markers
        self.cell = row * width + col
        self.facing = facing
        self.steps = (-width, 1, width, -1)  # cell offset of one step North, East, South, West

    def is_clear(self, facing: int) -> bool:
        return not self.walls[self.cell + self.steps[facing & 3]]

    def test(self, kind: int) -> bool:
        """The un-negated condition `kind` (index into syntax.CONDITIONS)."""
        if kind == syntax.FRONT_IS_CLEAR:
            return self.is_clear(self.facing)
        if kind == syntax.LEFT_IS_CLEAR:
            return self.is_clear(self.facing + 3)
        if kind == syntax.RIGHT_IS_CLEAR:
            return self.is_clear(self.facing + 1)
        if kind == syntax.MARKERS_PRESENT:
            return self.markers[self.cell] > 0
        return self.markers[self.cell] == 0

    def act(self, kind: int) -> None:
        """Applies action `kind` (original semantics, docs/spec.md §3)."""
        if kind == syntax.MOVE:
            if self.is_clear(self.facing):
                self.cell += self.steps[self.facing]
        elif kind == syntax.TURN_LEFT:
            self.facing = (self.facing + 3) & 3
        elif kind == syntax.TURN_RIGHT:
            self.facing = (self.facing + 1) & 3
        elif kind == syntax.PICK_MARKER:
            if self.markers[self.cell] > 0:
                self.markers[self.cell] -= 1
        else:
            self.markers[self.cell] += 1


class ShownWorlds:
    """Host copies of worlds [P, E] restricted to the first `num_shown` examples of each program."""

    def __init__(self, worlds, num_shown: int):
        walls = worlds.walls
        if np.ndim(walls) != 4:
            raise ValueError(f"worlds need leading axes [programs, examples]; walls have shape "
                             f"{np.shape(walls)}")
        if walls.shape[1] < num_shown:
            raise ValueError(f"num_shown ({num_shown}) exceeds the {walls.shape[1]} worlds per "
                             "program")
        height, width = walls.shape[2:]
        self.width = width
        shown = lambda x: np.asarray(x[:, :num_shown])  # slice before any device-to-host copy
        self.walls = shown(walls).reshape(len(walls), num_shown, height * width)
        self.markers = shown(worlds.markers).reshape(self.walls.shape)
        self.row, self.col, self.facing = (shown(x) for x in (worlds.row, worlds.col, worlds.facing))

    def __len__(self) -> int:
        return len(self.walls)

    def states(self, program: int) -> list[ShownState]:
        """Fresh mutable states of program `program`'s shown worlds."""
        walls = self.walls[program].tolist()
        markers = self.markers[program].astype(np.int64).tolist()
        rows, cols, facings = (x[program].tolist() for x in (self.row, self.col, self.facing))
        return [ShownState(w, m, r, c, f, self.width)
                for w, m, r, c, f in zip(walls, markers, rows, cols, facings)]
