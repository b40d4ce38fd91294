"""Grammar-constrained greedy decoding: the KV cache changes nothing, every program parses, one
compilation per shape."""
import math
import re

import jax
import numpy as np
import pytest
from flax import nnx

from kareljax.data import grammar, tokens
from kareljax.model import decode, sizes

PROMPT = 60


def _model(seed, scale=None):
    model = sizes.build_model(sizes.SIZES["tiny"], rngs=nnx.Rngs(seed))
    if scale:  # larger weights: more varied greedy choices than a freshly initialised model
        state = nnx.state(model, nnx.Param)
        keys = iter(jax.random.split(jax.random.key(seed), len(jax.tree.leaves(state))))
        nnx.update(model, jax.tree.map(
            lambda x: scale * jax.random.normal(next(keys), x.shape, x.dtype), state))
    return model


def _prompts(seed, batch=12):
    ids = jax.random.randint(jax.random.key(seed), (batch, PROMPT), tokens.WALL, tokens.OPEN)
    return ids.at[:, 0].set(tokens.EXAMPLES).at[:, -1].set(tokens.OPEN)


@pytest.mark.parametrize("g", [grammar.straight_line(14), grammar.Grammar(40, 3)],
                         ids=["straight", "full"])
def test_cache_equals_recompute_token_for_token(g):
    model = _model(0, scale=0.5)
    prompts = _prompts(1)
    cached = decode.greedy_decode(model, prompts, g)
    full = decode.greedy_decode_recompute(model, prompts, g)
    np.testing.assert_array_equal(np.asarray(cached), np.asarray(full))


@pytest.mark.parametrize("seed", range(3))
def test_every_decoded_program_parses_under_the_full_grammar(seed):
    g = grammar.Grammar(max_tokens=30, max_depth=3)
    out = np.asarray(decode.with_opening(decode.greedy_decode(_model(seed, 1.0), _prompts(seed), g)))
    kinds = set()
    for row in out:
        program = tokens.decode_program(row)  # raises if it does not parse
        kinds.update(type(s).__name__ for s in program.body)
        assert tokens.program_length(row[None])[0] <= g.max_tokens
    assert kinds  # something was generated


def test_straight_line_programs_have_1_to_14_actions():
    out = np.asarray(decode.with_opening(
        decode.greedy_decode(_model(3, 1.0), _prompts(3, 32), grammar.straight_line(14))))
    for row in out:
        program = tokens.decode_program(row)
        assert 1 <= len(program.body) <= 14


def test_forced_tokens_are_followed():
    g = grammar.straight_line(14)
    forced = np.full((2, 15), -1)
    forced[0, :3] = tokens.ACTION0 + np.array([0, 1, 0])
    forced[0, 3] = tokens.CLOSE
    forced[1, :1] = tokens.ACTION0 + 4
    out = np.asarray(decode.greedy_decode(_model(0), _prompts(0, 2), g, forced=forced))
    np.testing.assert_array_equal(out[0, :5], list(forced[0, :4]) + [tokens.PAD])
    assert out[1, 0] == tokens.ACTION0 + 4


def test_decode_loop_compiles_once():
    g = grammar.straight_line(14)
    model = _model(0)
    before = decode._greedy_cached._cache_size()
    decode.greedy_decode(model, _prompts(5, 7), g)  # a batch size no other test uses
    decode.greedy_decode(_model(1), _prompts(6, 7), g)  # other weights and prompts
    assert decode._greedy_cached._cache_size() == before + 1


def test_decode_loop_writes_the_cache_in_place():
    """The compiled loop copies no cache-sized array: each step writes its new slots in place
    (copies of the whole cache, transposed or not, once made the tiny model's steps 2x
    slower)."""
    model, prompts, g = _model(0), _prompts(1), grammar.straight_line(14)
    graphdef, params = nnx.split(model)
    forced = np.zeros((len(prompts), 0), np.int32)
    hlo = decode._greedy_cached.lower(graphdef, params, prompts, forced, grammar=g,
                                      max_new=15).compile().as_text()
    size = sizes.SIZES["tiny"]
    cache_size = len(prompts) * size.n_heads * (PROMPT + 15) * size.head_dim
    copied = [math.prod(int(n) for n in shape.split(",") if n) for shape in
              re.findall(r"= \w+\[([\d,]*)\]\S* copy\(", hlo)]
    assert copied and cache_size not in copied
