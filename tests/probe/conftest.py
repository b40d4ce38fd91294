"""A hand-made spec and a tiny model shared by the probe tests."""
import numpy as np
import pytest
from flax import nnx

from kareljax.data import generate, tokens
from kareljax.karel import parser, reference, world
from kareljax.model import sizes

WORLD = """\
######
#....#
#.>..#
#..1.#
#....#
######"""


def spec_of(source: str, size: int = 16, worlds: tuple[str, ...] = (WORLD,) * 10) -> dict:
    """One spec of the program `source` on `worlds` (10 copies of WORLD by default; program
    tokens padded to `size`)."""
    program = parser.parse(source)
    starts = [world.from_text(text) for text in worlds]
    finals = [reference.run(program, start).world for start in starts]
    grid = lambda ws: np.asarray(generate.glyphs(world.stack(ws)))  # noqa: E731
    ids = np.zeros(size, np.int64)
    encoded = tokens.encode_program(program)
    ids[:len(encoded)] = encoded
    return {"program": ids[None], "length": np.array([len(program.body)]),
            "inputs": grid(starts)[None], "outputs": grid(finals)[None]}


@pytest.fixture(scope="module")
def spec():
    """One spec: `move; turn_right; move; pick_marker` on 10 copies of WORLD."""
    return spec_of("def run() { move(); turn_right(); move(); pick_marker() }")


@pytest.fixture(scope="module")
def model():
    return sizes.build_model(sizes.SIZES["tiny"], rngs=nnx.Rngs(0))
