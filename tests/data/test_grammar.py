"""The program grammar automaton (kareljax/data/grammar.py): random walks, exhaustive reachability,
the straight-line constraint, and agreement with the token decoder."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kareljax.data import grammar as G
from kareljax.data import tokens as T
from kareljax.karel import printer, sampling, syntax
from kareljax.karel.parser import parse
from tests.conftest import GOLDEN_FILES


def nesting(stmts) -> int:
    return max((1 + nesting(syntax.children(s)) if not isinstance(s, syntax.Action) else 0
                for s in stmts), default=0)


@functools.partial(jax.jit, static_argnums=0)
def random_walks(g: G.Grammar, noise):
    """One walk per row of Gumbel noise [n, steps, VOCAB_SIZE]: each step takes the allowed token
    with the largest noise (a uniform choice among the allowed tokens, the noise given from outside
    so no PRNG is compiled). Returns tokens, whether a walk got stuck, done, length."""
    def walk(noise):
        def step(state, nz):
            mask = g.allowed(state)
            token = jnp.argmax(jnp.where(mask, nz, -jnp.inf)).astype(jnp.int32)
            stuck = ~mask.any() | (~G.done(state) & ~mask[1:].any())
            return g.advance(state, token), (token, stuck)
        final, (tokens, stuck) = jax.lax.scan(step, g.init(), noise)
        return tokens, stuck.any(), G.done(final), final.length
    return jax.vmap(walk)(noise)


def walk_noise(seed: int, n: int, steps: int) -> np.ndarray:
    """Gumbel noise with a random per-walk preference for `}`: short and budget-filling walks."""
    rng = np.random.default_rng(seed)
    noise = rng.gumbel(size=(n, steps, T.VOCAB_SIZE))
    noise[:, :, T.CLOSE] += rng.uniform(-2.0, 3.0, (n, 1))
    return noise.astype(np.float32)


@pytest.mark.parametrize("g", [
    G.Grammar(max_tokens=24, max_depth=3),
    G.Grammar(max_tokens=40, max_depth=1, exclude=("while", "repeat", "pick_marker")),
    G.straight_line(14),
])
def test_random_walks_end_in_valid_programs(g):
    noise = walk_noise(0, 1000, g.max_tokens + 2)
    tokens, stuck, done, length = map(np.asarray, random_walks(g, noise))
    assert not stuck.any() and done.all()
    assert (length <= g.max_tokens).all() and (length == g.max_tokens).any()
    assert len(np.unique(length)) > 3
    excluded = [T.ID[n] for n in g.exclude]
    depths = set()
    for ids, n in zip(tokens, length):
        program = T.decode_program(ids)
        assert parse(printer.to_text(program)) == program
        assert T.encode_program(program).tolist() == ids[:n].tolist()
        assert (ids[n:] == T.PAD).all() and not np.isin(ids, excluded).any()
        depths.add(nesting(program.body))
    assert max(depths) == g.max_depth


def test_straight_line_allows_exactly_1_to_14_actions():
    g = G.straight_line(14)
    allowed_ids = jax.jit(lambda s: g.allowed(s))
    advance = jax.jit(g.advance)
    state = g.init()
    assert np.nonzero(np.asarray(allowed_ids(state)))[0].tolist() == [T.OPEN]
    state = advance(state, T.OPEN)
    for k in range(15):
        allowed = set(np.nonzero(np.asarray(allowed_ids(state)))[0].tolist())
        want = (set(T.ACTION_IDS.tolist()) if k < 14 else set()) | ({T.CLOSE} if k else set())
        assert allowed == want, k
        state = advance(state, T.ACTION0 + k % 5 if k < 14 else T.CLOSE)
    assert bool(G.done(state))
    assert np.nonzero(np.asarray(allowed_ids(state)))[0].tolist() == [T.PAD]


def _key(s: G.State) -> np.ndarray:
    return np.concatenate([np.asarray(x).reshape(len(s.phase), -1)
                           for x in (s.phase, s.depth, s.length, s.stack)], 1)


def _chunked(fn, args, size: int = 512):
    """fn over the leading axis of the pytree `args`, in fixed-size chunks (one compilation)."""
    n = len(jax.tree.leaves(args)[0])
    pad = -n % size
    args = jax.tree.map(lambda x: np.concatenate([x, np.repeat(x[:1], pad, 0)]), args)
    outs = [fn(*jax.tree.map(lambda x: x[i:i + size], args)) for i in range(0, n + pad, size)]
    return jax.tree.map(lambda *x: np.concatenate(x)[:n], *outs)


@pytest.mark.parametrize("g", [G.Grammar(max_tokens=18, max_depth=3),
                               G.Grammar(max_tokens=11, max_depth=1, exclude=("not", "move"))])
def test_no_reachable_state_is_a_dead_end(g):
    """Breadth-first over every reachable state: each one not done has an allowed token, and
    every allowed token leads to a state that is not failed."""
    allowed = jax.jit(jax.vmap(g.allowed))
    advance = jax.jit(jax.vmap(g.advance))
    frontier = jax.tree.map(lambda x: np.asarray(x)[None], g.init())
    seen, finished = 0, 0
    while len(frontier.phase):
        mask = _chunked(allowed, (frontier,))
        is_done = frontier.phase == G.DONE
        assert mask[~is_done].any(1).all() and not mask[~is_done, T.PAD].any()
        seen, finished = seen + len(mask), finished + is_done.sum()
        src, tok = np.nonzero(mask & ~is_done[:, None])
        if not len(src):
            break
        nxt = _chunked(advance, (jax.tree.map(lambda x: x[src], frontier), tok.astype(np.int32)))
        assert not (nxt.phase == G.ERROR).any()
        _, first = np.unique(_key(nxt), axis=0, return_index=True)
        frontier = jax.tree.map(lambda x: x[np.sort(first)], nxt)
    assert finished > 0 and seen > 50


@functools.partial(jax.jit, static_argnums=0)
def _run(g: G.Grammar, ids):
    return g.run(ids)


def mutations(rng, ids: np.ndarray, count: int) -> list[np.ndarray]:
    """Copies of a program's ids with one token inserted, deleted or replaced."""
    pool = np.concatenate([T.PROGRAM_IDS, [T.PAD, T.ID["Code:"]]])
    out = []
    for _ in range(count):
        i = int(rng.integers(len(ids) + 1))
        op = rng.integers(3)
        tok = [int(rng.choice(pool))]
        if op == 0:
            out.append(np.concatenate([ids[:i], tok, ids[i:]]))
        elif op == 1 and i < len(ids):
            out.append(np.delete(ids, i))
        else:
            out.append(np.concatenate([ids[:i], tok, ids[i + 1:]]))
    return out


def test_automaton_agrees_with_decoder_on_mutated_programs():
    rng = np.random.default_rng(0)
    seqs = []
    for _ in range(150):
        program = syntax.Program(sampling.random_block(rng, 0, 3, 3))
        ids = T.encode_program(program)
        seqs += [ids] + mutations(rng, ids, 6)
    width = max(len(s) for s in seqs) + 2
    batch = np.stack([np.pad(s, (0, width - len(s))) for s in seqs])
    g = G.Grammar(max_tokens=width, max_depth=8)
    accepted = np.asarray(G.done(_run(g, batch)))
    for ids, ok in zip(batch, accepted):
        try:
            T.decode_program(ids)
            decodes = True
        except T.TokenError:
            decodes = False
        assert decodes == ok, [T.token_name(int(i)) for i in ids]
    assert 0.2 < accepted.mean() < 0.8


def test_golden_programs_fit_their_exact_bounds(golden):
    """Each program is accepted with budget = its length and depth = its nesting, not with less."""
    programs = [parse(r["code"]) for name in GOLDEN_FILES for r in golden(name)]
    encoded = [T.encode_program(p) for p in programs]
    width = max(len(e) for e in encoded)
    ids = np.stack([np.pad(e, (0, width - len(e))) for e in encoded])
    lengths = T.program_length(ids)
    depths = np.array([nesting(p.body) for p in programs])
    deepest = int(depths.max())
    for tokens, depth in ((width, deepest), (width - 1, deepest), (width, deepest - 1), (12, 0)):
        done = np.asarray(G.done(_run(G.Grammar(tokens, depth), ids)))
        assert np.array_equal(done, (lengths <= tokens) & (depths <= depth)), (tokens, depth)


def test_invalid_tokens_fail_and_stay_failed():
    g = G.Grammar(max_tokens=10, max_depth=1)
    state = _run(g, np.array([[T.OPEN, T.ELSE, T.CLOSE, T.PAD], [T.OPEN, T.MARKER1, T.CLOSE, T.PAD],
                              [T.OPEN, T.IF, T.COND0, T.IF],  # deeper than max_depth
                              [T.OPEN, T.ACTION0, T.CLOSE, T.PAD]]))
    assert np.asarray(G.failed(state)).tolist() == [True, True, True, False]
    assert np.asarray(G.done(state)).tolist() == [False, False, False, True]
    assert not np.asarray(jax.jit(jax.vmap(g.allowed))(state))[:3].any()


def test_opened_is_the_state_after_run():
    g = G.Grammar(max_tokens=10, max_depth=2)
    want = g.advance(g.init((3,)), jnp.full((3,), T.OPEN))
    got = g.opened((3,))
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)))


def test_grammar_validates_its_bounds():
    for bad in (dict(max_tokens=2), dict(exclude=("}",)), dict(exclude=T.TOKENS[
            T.ACTION0:T.ACTION0 + 5]), dict(exclude=("nonsense",))):
        with pytest.raises(ValueError):
            G.Grammar(**bad)
