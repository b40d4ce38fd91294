"""The transformer: shapes, causality, padding, sizes, hidden states, compiling once, training."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from kareljax.model import (SIZES, ModelSize, build_model, count_params, forward_with_states,
                            hidden_states, init_cache, positions_from_mask)
from kareljax.model.transformer import apply_rotary, rotary_angles

TINY = SIZES["tiny"]
B, T = 2, 12


@pytest.fixture(scope="module")
def model():
    return build_model(TINY, rngs=nnx.Rngs(0))


@jax.jit
def _apply(graphdef, state, tokens, positions, mask):
    return nnx.merge(graphdef, state)(tokens, positions, mask)


def apply(model, tokens, positions=None, mask=None):
    """model(tokens, positions, mask), jitted: eager op-by-op dispatch is slow on CPU."""
    return _apply(*nnx.split(model), tokens, positions, mask)


def random_tokens(seed, shape=(B, T)):
    return jax.random.randint(jax.random.key(seed), shape, 1, TINY.vocab_size)


def closed_form_params(s: ModelSize) -> int:
    """Embedding, blocks (LN; q, k, v, out without bias; MLP with biases), final LN, head + bias."""
    d, m, v = s.d_model, s.d_mlp, s.vocab_size
    block = 2 * d + 4 * d * d + (d * m + m) + (m * d + d)
    return v * d + s.n_layers * block + 2 * d + (d * v + v)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_shapes_and_dtypes(dtype):
    model = build_model(TINY, rngs=nnx.Rngs(0), dtype=dtype)
    logits = apply(model, random_tokens(0))
    assert logits.shape == (B, T, TINY.vocab_size) and logits.dtype == jnp.float32
    assert bool(jnp.isfinite(logits).all())
    graphdef, state = nnx.split(model)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    states = jax.jit(lambda s, x: hidden_states(nnx.merge(graphdef, s), x))(state, random_tokens(0))
    assert states.dtype == dtype


def test_causality(model):
    tokens = random_tokens(1)
    changed = tokens.at[:, 7:].set(random_tokens(2)[:, 7:])
    a, b = apply(model, tokens), apply(model, changed)
    np.testing.assert_allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert not np.allclose(a[:, 7:], b[:, 7:], atol=1e-3)


def test_right_padding_keeps_real_logits(model):
    """Real tokens first, pads after: real positions' logits equal the unpadded sequence's, with
    or without the mask (causality alone hides later pads)."""
    n = 8
    tokens = random_tokens(3)
    mask = jnp.arange(T) < n
    padded = jnp.where(mask, tokens, 0)
    alone = apply(model, tokens[:, :n])
    np.testing.assert_allclose(apply(model, padded)[:, :n], alone, atol=1e-5)
    masked = apply(model, padded, mask=jnp.broadcast_to(mask, (B, T)))
    np.testing.assert_allclose(masked[:, :n], alone, atol=1e-5)


def test_left_padding_needs_the_mask(model):
    """Pads first: with the mask, real positions' logits equal the unpadded sequence's, whether
    rotary positions start at the first real token (positions_from_mask) or at 0 (rotary
    attention sees only position differences); without the mask they differ."""
    p = 4
    tokens = random_tokens(4)[:, :T - p]
    padded = jnp.concatenate([jnp.zeros((B, p), tokens.dtype), tokens], axis=1)
    mask = jnp.broadcast_to(jnp.arange(T) >= p, (B, T))
    alone = apply(model, tokens)
    left = apply(model, padded, positions_from_mask(mask), mask)
    np.testing.assert_allclose(left[:, p:], alone, atol=1e-5)
    assert bool(jnp.isfinite(left).all())
    np.testing.assert_allclose(apply(model, padded, mask=mask)[:, p:], alone, atol=1e-4)
    assert not np.allclose(apply(model, padded)[:, p:], alone, atol=1e-3)


def test_per_row_padding(model):
    """Rows of one batch with different pad lengths each match their own unpadded run."""
    tokens = random_tokens(5)
    lengths = jnp.array([T, 5])
    mask = jnp.arange(T)[None] >= (T - lengths)[:, None]          # left padding
    logits = apply(model, jnp.where(mask, tokens, 0), positions_from_mask(mask), mask)
    np.testing.assert_allclose(logits[1, T - 5:], apply(model, tokens[1:, T - 5:])[0], atol=1e-5)
    np.testing.assert_allclose(logits[0], apply(model, tokens[:1])[0], atol=1e-5)


def test_param_counts():
    tiny = count_params(build_model(TINY, rngs=nnx.Rngs(0)))
    assert tiny == closed_form_params(TINY) and tiny < 1_000_000
    for name in ("small", "icml"):
        abstract = nnx.eval_shape(lambda s=SIZES[name]: build_model(s, rngs=nnx.Rngs(0)))
        assert count_params(abstract) == closed_form_params(SIZES[name])
    icml = SIZES["icml"]
    assert (icml.n_layers, icml.d_model, icml.n_heads, icml.head_dim, icml.d_mlp,
            icml.rotary_dim, icml.max_len) == (20, 1024, 16, 64, 4096, 32, 2048)
    assert closed_form_params(icml) == 251_961_421                   # vocab 77
    # With CodeGen's 51,200-token vocabulary: CodeGen-350M-mono's 356,712,448 parameters.
    assert closed_form_params(ModelSize(51_200, 1024, 20, 16, 4096, 32, 2048)) == 356_712_448


def test_hidden_states(model):
    graphdef, state = nnx.split(model)

    @jax.jit
    def capture(state, tokens):
        m = nnx.merge(graphdef, state)
        logits, states = forward_with_states(m, tokens)
        assert not nnx.state(m, nnx.Intermediate)                 # nothing left on the model
        x = m.embed(tokens)
        positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
        rope = rotary_angles(positions, m.rotary_dim)
        outputs = []
        for block in m.blocks:
            x, _ = block(x, rope, None)
            outputs.append(x)
        return logits, states, m.head(states[-1]), m.embed(tokens), outputs, m.ln_f(x)

    tokens = random_tokens(6)
    logits, states, head, embedded, outputs, final = capture(state, tokens)
    # As HF CodeGen's hidden_states: n + 1 states, the last block's only after the final norm.
    assert states.shape == (TINY.n_layers + 1, B, T, TINY.d_model)
    np.testing.assert_allclose(logits, apply(model, tokens), atol=1e-6)
    np.testing.assert_allclose(head, logits, atol=1e-6)
    np.testing.assert_array_equal(states[0], embedded)
    for i in range(TINY.n_layers - 1):
        np.testing.assert_allclose(states[1 + i], outputs[i], atol=1e-6)
    np.testing.assert_allclose(states[-1], final, atol=1e-6)


def test_jit_compiles_once(model):
    graphdef, state = nnx.split(model)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def forward(state, tokens):
        return forward_with_states(nnx.merge(graphdef, state), tokens)

    a = forward(state, random_tokens(7))
    b = forward(state, random_tokens(8))
    assert a[0].shape == b[0].shape == (B, T, TINY.vocab_size)
    np.testing.assert_allclose(a[0], apply(model, random_tokens(7)), atol=1e-5)


def test_adam_steps_reduce_loss():
    model = build_model(TINY, rngs=nnx.Rngs(1))
    graphdef, params = nnx.split(model, nnx.Param)
    tokens = random_tokens(9, (4, 16))
    optimizer = optax.adam(3e-3)

    def loss_fn(params):
        logits = nnx.merge(graphdef, params)(tokens[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = optimizer.init(params)
    losses = []
    for _ in range(20):
        params, opt_state, loss = step(params, opt_state)
        losses.append(float(loss))
    assert np.log(TINY.vocab_size) - 0.1 < losses[0] < np.log(TINY.vocab_size) + 0.1
    assert losses[-1] < losses[0] - 0.5


@pytest.mark.parametrize("dtype,atol", [(jnp.float32, 1e-5), (jnp.bfloat16, 1e-2)])
def test_cached_decoding_matches_full_forward(dtype, atol):
    """Left-padded prompt prefilled into the cache, then one token per jitted step: every
    step's logits equal the full forward's at that position."""
    chex.clear_trace_counter()
    model = build_model(TINY, rngs=nnx.Rngs(2), dtype=dtype)
    p, prompt = 3, 5
    tokens = random_tokens(10)
    mask = jnp.arange(T)[None] >= jnp.array([[0], [p]])               # row 1 left-padded
    tokens = jnp.where(mask, tokens, 0)
    positions = positions_from_mask(mask)
    full = apply(model, tokens, positions, mask)

    graphdef, state = nnx.split(model)

    @jax.jit
    @chex.assert_max_traces(n=2)                    # the prompt's shape and the step's shape
    def run(state, cache, chunk, index, chunk_positions):
        return nnx.merge(graphdef, state).decode(chunk, cache, index, chunk_positions, mask)

    cache = init_cache(model, B, T)
    logits, cache = run(state, cache, tokens[:, :prompt], 0, positions[:, :prompt])
    np.testing.assert_allclose(logits[0], full[0, :prompt], atol=atol)
    np.testing.assert_allclose(logits[1, p:], full[1, p:prompt], atol=atol)
    for i in range(prompt, T):
        logits, cache = run(state, cache, tokens[:, i:i + 1], i, positions[:, i:i + 1])
        np.testing.assert_allclose(logits[:, 0], full[:, i], atol=atol)


@pytest.mark.parametrize("t,blocks", [(40, 8), (37, 8), (21, 4), (9, 8)])
def test_blockwise_causal_attention_equals_one_causal_call(t, blocks):
    """The CPU query-block attention (37 and 21: a short last block; 9 < 2 blocks: one call)
    gives the fused causal attention's values and gradients."""
    from kareljax.model.transformer import causal_attention
    q, k, v = jax.random.normal(jax.random.key(t), (3, 2, t, 3, 16))

    def loss(fn, q, k, v):
        return (fn(q, k, v) ** 2).sum()

    blockwise = jax.jit(lambda q, k, v: causal_attention(q, k, v, blocks))
    fused = jax.jit(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True))
    np.testing.assert_allclose(blockwise(q, k, v), fused(q, k, v), atol=1e-5)
    grads = [jax.grad(loss, argnums=(1, 2, 3))(fn, q, k, v) for fn in (blockwise, fused)]
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_long_sequences_without_a_mask_match_the_masked_path(model):
    """At T = 40 an unmasked call takes the blockwise causal path, an all-ones attention mask
    the explicit-mask path: the logits agree."""
    tokens = random_tokens(11, (B, 40))
    ones = jnp.ones((B, 40), bool)
    np.testing.assert_allclose(apply(model, tokens), apply(model, tokens, mask=ones), atol=1e-5)


@pytest.mark.parametrize("padded", [False, True])
def test_prefill_equals_decode_at_slot_0(padded):
    """`prefill` (own keys only, last logits) leaves the same cache as `decode` at index 0 and
    its logits are the last position's; the next cached step then matches the full forward."""
    model = build_model(TINY, rngs=nnx.Rngs(5))
    prompt, total = 30, 34
    tokens = random_tokens(12, (B, total))
    mask = jnp.ones((B, total), bool)
    if padded:
        mask = jnp.arange(total)[None] >= jnp.array([[0], [4]])
        tokens = jnp.where(mask, tokens, 0)
    positions = positions_from_mask(mask)
    key_mask = mask if padded else None
    graphdef, state = nnx.split(model)

    @jax.jit
    def both(state):
        m = nnx.merge(graphdef, state)
        cache = init_cache(m, B, total)
        pre = m.prefill(tokens[:, :prompt], cache, positions[:, :prompt], key_mask)
        dec = m.decode(tokens[:, :prompt], cache, 0, positions[:, :prompt], key_mask)
        step = m.decode(tokens[:, prompt:prompt + 1], pre[1], prompt,
                        positions[:, prompt:prompt + 1], key_mask)
        return pre, dec, step[0][:, 0]

    (last, pre_cache), (logits, dec_cache), next_logits = both(state)
    np.testing.assert_allclose(last, logits[:, -1], atol=1e-5)
    for a, b in zip(jax.tree.leaves(pre_cache), jax.tree.leaves(dec_cache)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    full = apply(model, tokens, positions, mask if padded else None)
    np.testing.assert_allclose(next_logits, full[:, prompt], atol=1e-5)


def test_blocks_are_parallel_residual_with_one_shared_layer_norm(model):
    """CodeGen's block: x + Attn(LN x) + MLP(LN x). A sequential block would feed the MLP
    LN(x + Attn(LN x)) instead."""
    block = model.blocks[0]
    x = jax.random.normal(jax.random.key(3), (B, T, TINY.d_model))
    rope = rotary_angles(jnp.broadcast_to(jnp.arange(T), (B, T)), TINY.rotary_dim)
    got, _ = block(x, rope, None)
    h = block.ln(x)
    attn, _ = block.attn(h, rope, None)
    assert float(jnp.abs(attn).max()) > 1e-3            # the attention path is not negligible
    np.testing.assert_allclose(got, x + attn + block.mlp(h), rtol=1e-5, atol=1e-5)
    sequential = x + attn + block.mlp(block.ln(x + attn))
    assert float(jnp.abs(got - sequential).max()) > 1e-4


def test_rotary_embeddings_rotate_the_first_rotary_dim_dims_only():
    head_dim, rotary_dim = 64, 32
    positions = jnp.broadcast_to(jnp.arange(T), (1, T))
    sin, cos = rotary_angles(positions, rotary_dim)
    assert sin.shape == (1, T, 1, rotary_dim // 2)
    q = jax.random.normal(jax.random.key(0), (1, T, 2, head_dim))
    k = jax.random.normal(jax.random.key(1), (1, T, 2, head_dim))
    rq, rk = apply_rotary(q, sin, cos), apply_rotary(k, sin, cos)
    np.testing.assert_array_equal(rq[..., rotary_dim:], q[..., rotary_dim:])  # pass through
    np.testing.assert_allclose(rq[:, 0], q[:, 0], atol=1e-6)                  # position 0: identity
    assert float(jnp.abs(rq[:, 1:, :, :rotary_dim] - q[:, 1:, :, :rotary_dim]).max()) > 1e-2
    # pairs (i, i + rotary_dim / 2) are rotated: their norms are kept
    half = rotary_dim // 2
    norms = lambda a: jnp.hypot(a[..., :half], a[..., half:rotary_dim])  # noqa: E731
    np.testing.assert_allclose(norms(rq), norms(q), rtol=1e-5)
    np.testing.assert_array_equal(rk[..., rotary_dim:], k[..., rotary_dim:])  # keys alike
    np.testing.assert_allclose(norms(rk), norms(k), rtol=1e-5)
    # the rotated part of q.k depends on the positions' difference only: same query and key
    # vectors at positions (i, j) and (i + 3, j + 3)
    q0, k0 = q[:, :1], k[:, :1]
    def score(i, j):
        at = lambda p, v: apply_rotary(v, sin[:, p:p + 1], cos[:, p:p + 1])  # noqa: E731
        return jnp.sum(at(i, q0)[..., :rotary_dim] * at(j, k0)[..., :rotary_dim])
    np.testing.assert_allclose(score(5, 2), score(8, 5), rtol=1e-4)
    assert abs(float(score(5, 2) - score(5, 4))) > 1e-3
