"""Karel worlds as arrays, and the 8-line text format of the golden files (docs/spec.md §1).

Directions are 0..3 = North, East, South, West; rows grow downward (North = row - 1). A world is
`World(walls, markers, row, col, facing)`; batches use the same fields with leading batch axes.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

NORTH, EAST, SOUTH, WEST = range(4)
HERO_CHARS = "^>v<"
# (row, col) step for each facing.
DELTAS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int32)
MAX_RENDERED_COUNT = 9  # counts >= 9 render as '9' ([D] docs/spec.md §1)


class WorldFormatError(ValueError):
    """World text that is not a valid rendered world."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class World:
    """One world (or a batch, with leading axes on every field); a pytree of numpy or jax arrays."""

    walls: np.ndarray    # bool [..., H, W]
    markers: np.ndarray  # int32 [..., H, W]
    row: np.ndarray      # int32 [...]
    col: np.ndarray      # int32 [...]
    facing: np.ndarray   # int32 [...]

    @property
    def shape(self) -> tuple[int, int]:
        return self.walls.shape[-2:]

    def copy(self) -> "World":
        return World(*(np.array(getattr(self, f.name)) for f in dataclasses.fields(self)))

    def __eq__(self, other) -> bool:
        return isinstance(other, World) and all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self))


def stack(worlds: list[World]) -> World:
    """Stacks single worlds into a batch with one leading axis."""
    return World(*(np.stack([getattr(w, f.name) for w in worlds])
                   for f in dataclasses.fields(World)))


def unstack(batch: World) -> list[World]:
    n = batch.row.shape[0]
    return [World(*(np.asarray(getattr(batch, f.name))[i] for f in dataclasses.fields(World)))
            for i in range(n)]


def from_text(text: str) -> World:
    """Reads the rendered format: '#' wall, '.' empty, digits markers, '^>v<' the hero.

    The hero's cell reads as holding no markers (rendering hides them).
    """
    lines = text.strip("\n").split("\n")
    width = len(lines[0])
    if any(len(line) != width for line in lines):
        raise WorldFormatError(f"world rows have different lengths: {[len(l) for l in lines]}")
    walls = np.zeros((len(lines), width), bool)
    markers = np.zeros((len(lines), width), np.int32)
    heroes = []
    for r, line in enumerate(lines):
        for c, ch in enumerate(line):
            if ch == "#":
                walls[r, c] = True
            elif ch in HERO_CHARS:
                heroes.append((r, c, HERO_CHARS.index(ch)))
            elif ch.isdigit():
                markers[r, c] = int(ch)
            elif ch != ".":
                raise WorldFormatError(f"row {r}, column {c}: unknown world character {ch!r}")
    if len(heroes) != 1:
        raise WorldFormatError(f"a world needs exactly one hero, found {len(heroes)}")
    r, c, facing = heroes[0]
    return World(walls, markers, np.int32(r), np.int32(c), np.int32(facing))


def to_text(world: World) -> str:
    """Renders one world; the hero is drawn over its cell, counts >= 9 as '9'."""
    chars = np.where(world.walls, "#", ".").astype(object)
    counts = np.minimum(world.markers, MAX_RENDERED_COUNT)
    has = (world.markers > 0) & ~world.walls
    chars[has] = counts[has].astype(str)
    chars[int(world.row), int(world.col)] = HERO_CHARS[int(world.facing)]
    return "\n".join("".join(row) for row in chars)


def to_exact(world: World) -> dict:
    """The golden files' `output_exact`: hero [x, y, char], markers sorted [x, y, count]."""
    ys, xs = np.nonzero(world.markers)
    markers = sorted([int(x), int(y), int(world.markers[y, x])] for y, x in zip(ys, xs))
    return {"hero": [int(world.col), int(world.row), HERO_CHARS[int(world.facing)]],
            "markers": markers}
