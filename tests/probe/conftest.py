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


def spec_of(source: str, size: int = 16) -> dict:
    """One spec of the program `source` on 10 copies of WORLD (program tokens padded to `size`)."""
    program = parser.parse(source)
    start = world.from_text(WORLD)
    final = reference.run(program, start).world
    grid = lambda w: np.asarray(generate.glyphs(world.stack([w] * 10)))  # noqa: E731
    ids = np.zeros(size, np.int64)
    encoded = tokens.encode_program(program)
    ids[:len(encoded)] = encoded
    return {"program": ids[None], "length": np.array([len(program.body)]),
            "inputs": grid(start)[None], "outputs": grid(final)[None]}


@pytest.fixture(scope="module")
def spec():
    """One spec: `move; turn_right; move; pick_marker` on 10 copies of WORLD."""
    return spec_of("def run() { move(); turn_right(); move(); pick_marker() }")


@pytest.fixture(scope="module")
def model():
    return sizes.build_model(sizes.SIZES["tiny"], rngs=nnx.Rngs(0))
