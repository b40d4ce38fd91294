"""World text format: golden round trips, the exact-state format, and malformed text."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from kareljax.karel import world
from kareljax.karel.world import World, WorldFormatError
from tests.conftest import GOLDEN_FILES

TEXT = ("#####\n"
        "#2.##\n"
        "#.>.#\n"
        "#####")


def test_from_text_reads_walls_markers_and_hero():
    w = world.from_text(TEXT)
    assert w.shape == (4, 5)
    np.testing.assert_array_equal(w.walls, [[1, 1, 1, 1, 1], [1, 0, 0, 1, 1],
                                            [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(w.markers, [[0] * 5, [0, 2, 0, 0, 0], [0] * 5, [0] * 5])
    assert (int(w.row), int(w.col), int(w.facing)) == (2, 2, world.EAST)
    assert world.to_text(w) == TEXT


@pytest.mark.parametrize("facing, char", list(enumerate("^>v<")))
def test_hero_characters(facing, char):
    w = world.from_text(TEXT.replace(">", char))
    assert int(w.facing) == facing
    assert world.to_text(w) == TEXT.replace(">", char)


def test_counts_of_nine_or_more_render_as_nine_and_hero_hides_markers():
    w = world.from_text(TEXT)
    w.markers[1, 1] = 12
    w.markers[2, 2] = 5  # under the hero
    assert world.to_text(w) == TEXT.replace("2", "9")
    w.markers[1, 1] = 9
    assert world.to_text(w) == TEXT.replace("2", "9")
    w.markers[1, 1] = 8
    assert world.to_text(w) == TEXT.replace("2", "8")


def test_to_exact_lists_hero_and_every_marker_sorted():
    w = world.from_text("#####\n#3.1#\n#.^.#\n#1..#\n#####")
    w.markers[2, 2] = 11  # under the hero: hidden in text, present in the exact state
    assert world.to_exact(w) == {"hero": [2, 2, "^"],
                                 "markers": [[1, 1, 3], [1, 3, 1], [2, 2, 11], [3, 1, 1]]}


# Every world of loops/while (multi-marker cells, truncated counts); every 4th record elsewhere
# (plain worlds, and test_golden.py reads all of their inputs anyway).
@pytest.mark.parametrize("name, stride", [(n, 1 if n in ("loops", "while") else 4)
                                          for n in GOLDEN_FILES])
def test_golden_worlds_round_trip(golden, name, stride):
    checked = exact = 0
    for record in golden(name)[::stride]:
        for example in record["examples"]:
            for key in ("input", "output"):
                w = world.from_text(example[key])
                assert world.to_text(w) == example[key]
                assert w.shape == (8, 8) and w.walls[[0, -1]].all() and w.walls[:, [0, -1]].all()
                checked += 1
            if "output_exact" in example:
                # Where nothing is hidden under the hero and no count was truncated, the rendered
                # output determines the exact state.
                out = example["output_exact"]
                hx, hy, _ = out["hero"]
                if all(c < 10 and (x, y) != (hx, hy) for x, y, c in out["markers"]):
                    assert world.to_exact(world.from_text(example["output"])) == out
                    exact += 1
    assert checked > 0
    assert exact > 0 or name in ("straight", "conditionals")


def test_stack_and_unstack_round_trip():
    worlds = [world.from_text(TEXT), world.from_text(TEXT.replace(">", "v").replace("2", "."))]
    batch = world.stack(worlds)
    assert batch.walls.shape == (2, 4, 5) and batch.row.shape == (2,)
    assert world.unstack(batch) == worlds
    assert worlds[0] != worlds[1]


def test_copy_is_independent():
    w = world.from_text(TEXT)
    c = w.copy()
    c.markers[1, 1] = 7
    assert w.markers[1, 1] == 2 and c == c and c != w


@pytest.mark.parametrize("text, message", [
    ("#####\n#.>.#\n####", "different lengths"),
    ("#####\n#.x>#\n#####", "'x'"),
    ("#####\n#...#\n#####", "found 0"),
    ("#####\n#>.<#\n#####", "found 2"),
])
def test_bad_world_text_raises(text, message):
    with pytest.raises(WorldFormatError, match=message):
        world.from_text(text)
    assert issubclass(WorldFormatError, ValueError)


def test_world_is_a_pytree():
    w = world.from_text(TEXT)
    leaves = jax.tree.leaves(w)
    assert len(leaves) == 5
    assert jax.tree.unflatten(jax.tree.structure(w), leaves) == w
    assert isinstance(jax.tree.map(lambda x: x, w), World)
