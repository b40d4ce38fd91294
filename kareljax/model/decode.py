"""Grammar-constrained greedy decoding on device (docs/spec.md §7): one jit-compiled loop per batch shape.

Every prompt of a dataset has the same length (the layout is fixed), so a batch needs no padding:
the prompt (ending with `run{`) is prefilled into the KV cache, then a `lax.while_loop` picks, at each
step, the most likely token among those the grammar automaton allows, feeds it back, and stops when
every program has closed (or after `max_new` tokens). Tokens after a program's final `}` are PAD.

`greedy_decode` uses the cache; `greedy_decode_recompute` runs the whole sequence through the model
at every step (the reference the cache is tested and benchmarked against). `forced` feeds given
program tokens instead of the model's choices (forced decoding of reference programs).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from kareljax.data import grammar as grammar_lib
from kareljax.data import tokens as T
from kareljax.model import data_parallel
from kareljax.model.transformer import init_cache


def _choose(logits, state, grammar, forced_token):
    """The next token: the best allowed one (or the forced one), PAD once the program is done."""
    allowed = grammar.allowed(state)
    best = jnp.argmax(jnp.where(allowed, logits, -jnp.inf), axis=-1).astype(jnp.int32)
    token = jnp.where(forced_token >= 0, forced_token, best)
    return jnp.where(grammar_lib.done(state), T.PAD, token)


def _forced_at(forced, t):
    return jnp.full(forced.shape[:1], -1, jnp.int32) if forced.shape[1] == 0 else jnp.where(
        t < forced.shape[1], forced[:, jnp.minimum(t, forced.shape[1] - 1)], -1)


@functools.partial(jax.jit, static_argnames=("graphdef", "grammar", "max_new"))
def _greedy_cached(graphdef, params, prompts, forced, *, grammar, max_new):
    model = nnx.merge(graphdef, params)
    batch, prompt_len = prompts.shape
    cache = init_cache(model, batch, prompt_len + max_new)
    positions = jnp.broadcast_to(jnp.arange(prompt_len), prompts.shape)
    last, cache = model.prefill(prompts, cache, positions)
    state = grammar.opened((batch,))
    out = jnp.full((batch, max_new), T.PAD, jnp.int32)

    def cond(carry):
        t, _, _, state, _ = carry
        return (t < max_new) & ~jnp.all(grammar_lib.done(state))

    def body(carry):
        t, last, cache, state, out = carry
        token = _choose(last, state, grammar, _forced_at(forced, t))
        state = grammar.advance(state, token)
        out = out.at[:, t].set(token)
        pos = jnp.full((batch, 1), prompt_len + t)
        logits, cache = model.decode(token[:, None], cache, prompt_len + t, pos)
        return t + 1, logits[:, 0], cache, state, out

    carry = (jnp.int32(0), last, cache, state, out)
    return jax.lax.while_loop(cond, body, carry)[-1]


@functools.partial(jax.jit, static_argnames=("graphdef", "grammar", "max_new"))
def _greedy_recompute(graphdef, params, prompts, forced, *, grammar, max_new):
    model = nnx.merge(graphdef, params)
    batch, prompt_len = prompts.shape
    seq = jnp.concatenate([prompts, jnp.full((batch, max_new), T.PAD, jnp.int32)], 1)
    state = grammar.opened((batch,))

    def cond(carry):
        t, _, state = carry
        return (t < max_new) & ~jnp.all(grammar_lib.done(state))

    def body(carry):
        t, seq, state = carry
        logits = model(seq)  # causal: positions after prompt_len + t do not matter
        last = jax.lax.dynamic_index_in_dim(logits, prompt_len + t - 1, axis=1, keepdims=False)
        token = _choose(last, state, grammar, _forced_at(forced, t))
        seq = jax.lax.dynamic_update_slice_in_dim(seq, token[:, None], prompt_len + t, axis=1)
        return t + 1, seq, grammar.advance(state, token)

    _, seq, _ = jax.lax.while_loop(cond, body, (jnp.int32(0), seq, state))
    return seq[:, prompt_len:]


def _run(fn, model, prompts, grammar, max_new, forced):
    """`fn` on the model's devices: one, or, for a model replicated over a mesh
    (`data_parallel.replicate`), the prompts' rows split over the mesh (then the result comes back
    as a host array, gathered from every process)."""
    graphdef, params = nnx.split(model)
    mesh = data_parallel.mesh_of(params)
    prompts = np.asarray(prompts, np.int32) if mesh is not None else jnp.asarray(prompts, jnp.int32)
    if prompts.ndim != 2 or prompts.shape[1] < 1:
        raise ValueError(f"prompts must be [batch, length], got shape {prompts.shape}")
    forced = (np.zeros((prompts.shape[0], 0), np.int32) if forced is None
              else np.asarray(forced, np.int32))
    if mesh is None:
        return fn(graphdef, params, prompts, jnp.asarray(forced), grammar=grammar,
                  max_new=max_new)
    (prompts, n), (forced, _) = (data_parallel.shard_rows(a, mesh) for a in (prompts, forced))
    out = fn(graphdef, params, prompts, forced, grammar=grammar, max_new=max_new)
    return data_parallel.to_host(out, n)


def greedy_decode(model, prompts, grammar: grammar_lib.Grammar, max_new: int | None = None,
                  forced=None) -> jax.Array:
    """Program tokens [B, max_new] after prompts [B, P] ending with `run{` (KV cache).

    `max_new` defaults to the grammar's bound (`max_tokens - 1`: everything after `run{`).
    `forced` [B, F] int: token t is forced[:, t] where t < F and forced >= 0 (PAD the rest with -1).
    """
    max_new = grammar.max_tokens - 1 if max_new is None else max_new
    return _run(_greedy_cached, model, prompts, grammar, max_new, forced)


def greedy_decode_recompute(model, prompts, grammar: grammar_lib.Grammar,
                            max_new: int | None = None, forced=None) -> jax.Array:
    """As `greedy_decode`, recomputing the whole sequence at every step (no cache)."""
    max_new = grammar.max_tokens - 1 if max_new is None else max_new
    return _run(_greedy_recompute, model, prompts, grammar, max_new, forced)


def with_opening(program_tokens) -> jax.Array:
    """`run{` + decoded tokens: the program segment `tokens.decode_program` reads."""
    program_tokens = jnp.asarray(program_tokens, jnp.int32)
    opening = jnp.full(program_tokens.shape[:-1] + (1,), T.OPEN, jnp.int32)
    return jnp.concatenate([opening, program_tokens], -1)
