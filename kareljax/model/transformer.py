"""The LM: a CodeGen-style decoder-only transformer in Flax NNX (docs/spec.md §6).

- Token embedding, `n_layers` blocks, final LayerNorm, untied output head (Linear with bias).
- Block: parallel residual with one LayerNorm, `h = x + Attn(LN x) + MLP(LN x)`.
- Attention: causal multi-head, one fused q/k/v projection and an output projection, no biases;
  rotary embeddings on the first `rotary_dim` dims of each head in the *rotate-half* (GPT-NeoX)
  layout. CodeGen pairs interleaved dims (GPT-J layout); the two differ by a fixed permutation of
  the q/k projection columns, so a randomly initialised model is the same model family.
  `jax.nn.dot_product_attention` does the attention in one fused call on TPU and GPU; on CPU
  the causal case runs in query blocks that skip most of the masked triangle
  (`causal_attention`, chosen for the platform the computation is compiled for).
- MLP: Linear -> tanh-GELU (CodeGen's `gelu_new`) -> Linear, with biases.
- Init N(0, 0.02) for weights and the embedding, zeros for biases; LayerNorm eps 1e-5.
- `dtype` is the compute dtype (float32 or bfloat16), parameters are stored in `param_dtype`;
  LayerNorm statistics, rotary rotation and the output head run in float32, logits are float32.

Hidden states: `forward_with_states`/`hidden_states` collect the residual stream as HuggingFace's
CodeGen returns it in `hidden_states` (docs/spec.md §8): n_layers + 1 states, the embedding output,
the outputs of blocks 1 .. n-1, and block n's output after the final LayerNorm, with
`nnx.capture`; a plain call sows nothing.
Decoding: `init_cache` ([B, heads, slots, head_dim] per layer), `Transformer.prefill` (the prompt
into slots 0..P-1, the last position's logits) and `Transformer.decode`, which attends over the
fixed-size cache as it was plus its own new keys, then writes those into the cache at a given
slot, in place (fixed shapes, one compile per shape).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

INIT = nnx.initializers.normal(stddev=0.02)
LN_EPS = 1e-5
ROPE_BASE = 10_000.0
STATES = "residual"   # the sow name of the residual-stream states
CPU_QUERY_BLOCKS = 8  # query blocks of `causal_attention` on CPU
CPU_ATTENTION_SCOPE = "cpu_query_blocked_attention"  # its name in compiled HLO metadata
PREFILL = object()    # the cache index of `Transformer.prefill`: slot 0, attending own keys only


class KVCache(NamedTuple):
    """Keys and values per layer, each [B, n_heads, S, head_dim] in the compute dtype. Heads
    before slots: a decode step's dots then read the cache as it lies (with [B, S, N, H], XLA on
    CPU copied the whole cache into that layout at every step)."""
    k: tuple[jax.Array, ...]
    v: tuple[jax.Array, ...]


def positions_from_mask(attention_mask: jax.Array) -> jax.Array:
    """Rotary positions that skip padding: 0 at the first real token (left padding safe)."""
    return jnp.maximum(jnp.cumsum(attention_mask.astype(jnp.int32), axis=-1) - 1, 0)


def rotary_angles(positions: jax.Array, rotary_dim: int) -> tuple[jax.Array, jax.Array]:
    """(sin, cos), each [B, T, 1, rotary_dim // 2] float32, for integer positions [B, T]."""
    half = rotary_dim // 2
    inv_freq = ROPE_BASE ** (-jnp.arange(half, dtype=jnp.float32) / max(half, 1))
    angles = positions.astype(jnp.float32)[..., None] * inv_freq
    return jnp.sin(angles)[:, :, None, :], jnp.cos(angles)[:, :, None, :]


def apply_rotary(x: jax.Array, sin: jax.Array, cos: jax.Array) -> jax.Array:
    """Rotates the first 2 * sin.shape[-1] dims of x [B, T, N, H] (rotate-half layout)."""
    half = sin.shape[-1]
    if half == 0:
        return x
    x1 = x[..., :half].astype(jnp.float32)
    x2 = x[..., half:2 * half].astype(jnp.float32)
    rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return jnp.concatenate([rotated.astype(x.dtype), x[..., 2 * half:]], axis=-1)


def causal_mask(query_slots: jax.Array, key_valid: jax.Array | None,
                num_keys: int) -> jax.Array:
    """Bool [B or 1, 1, T, S]: key slot s is visible from query slot q iff s <= q and the key is
    valid (`key_valid[b, s]`, True = real token) or s == q. A query always sees itself, so no row
    is empty; rows of padding queries are meaningless but finite."""
    return _visible(query_slots, jnp.arange(num_keys), key_valid)


def _visible(query_slots, key_slots, key_valid):
    """`causal_mask` for keys at the given slots [K] (key_valid [B, K] or None)."""
    q = query_slots[:, None]
    visible = (key_slots <= q)[None]                               # [1, T, K]
    if key_valid is not None:
        visible = visible & (key_valid.astype(bool)[:, None, :] | (key_slots == q)[None])
    return visible[:, None]


def decode_mask(index, num_new: int, key_valid: jax.Array | None, num_slots: int) -> jax.Array:
    """Bool [B or 1, 1, T, S + T] for `decode`: queries at slots index..index+T-1 over the
    cache's S slots as they were before the call, then the call's T new keys. Cache slots from
    `index` on are stale (the call rewrites them) and hidden; the rest follow `causal_mask`."""
    query = index + jnp.arange(num_new)
    keys = jnp.concatenate([jnp.arange(num_slots), query])
    if key_valid is not None:
        new_valid = jax.lax.dynamic_slice_in_dim(key_valid, index, num_new, axis=1)
        key_valid = jnp.concatenate([key_valid, new_valid], axis=1)
    fresh = jnp.concatenate([jnp.arange(num_slots) < index, jnp.ones(num_new, bool)])
    return _visible(query, keys, key_valid) & fresh


def causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, blocks: int = CPU_QUERY_BLOCKS
                     ) -> jax.Array:
    """Causal self-attention of q, k, v [B, T, N, H]: one fused `dot_product_attention` call on
    TPU and GPU; on CPU the query-blocked form (`_query_blocked_attention`). The platform is the
    one the computation is lowered for (`lax.platform_dependent`), i.e. the devices its inputs
    live on, so a compile for a TPU or GPU target on a CPU host takes the fused path."""
    t = q.shape[1]
    if blocks <= 1 or t < 2 * blocks:
        return _fused_causal_attention(q, k, v)
    return jax.lax.platform_dependent(
        q, k, v, cpu=functools.partial(_query_blocked_attention, blocks=blocks),
        default=_fused_causal_attention)


def _fused_causal_attention(q, k, v):
    return jax.nn.dot_product_attention(q, k, v, is_causal=True)


def _query_blocked_attention(q, k, v, blocks: int):
    """Causal attention in `blocks` query blocks, each attending to the keys up to its last query
    only, so most of the masked upper triangle of the [T, T] scores is never computed or stored
    (XLA's CPU attention materialises the whole matrix; this roughly halves that work)."""
    t = q.shape[1]
    size = -(-t // blocks)
    out = []
    with jax.named_scope(CPU_ATTENTION_SCOPE):
        for start in range(0, t, size):
            end = min(start + size, t)
            visible = jnp.arange(end)[None, :] <= jnp.arange(start, end)[:, None]
            out.append(jax.nn.dot_product_attention(q[:, start:end], k[:, :end], v[:, :end],
                                                    mask=visible[None, None]))
        return jnp.concatenate(out, axis=1)


def cached_attention(q, k, v, k_cache, v_cache, mask) -> jax.Array:
    """Attention of queries q [B, T, N, H] over the cache k_cache, v_cache [B, N, S, H] as it was
    before this call, then this call's own keys/values k, v [B, T, N, H], under mask
    [B or 1, 1, T, S + T] (`decode_mask`). The arithmetic of `jax.nn.dot_product_attention`
    (scores scaled after the dot, masked, softmax in float32). Reading the old cache, not the
    one with the new slots written, lets XLA write those slots in place: on CPU, fusing the
    write into the dots made it copy the whole cache several times per step."""
    scale = jnp.asarray(q.shape[-1] ** -0.5, q.dtype)
    scores = jnp.concatenate([jnp.einsum("bnsh,btnh->bnst", k_cache, q),
                              jnp.einsum("bsnh,btnh->bnst", k, q)], axis=2) * scale
    scores = jnp.where(jnp.swapaxes(mask, -1, -2), scores, -0.7 * jnp.finfo(scores.dtype).max)
    probs = jax.nn.softmax(scores.astype(jnp.float32), axis=2).astype(v.dtype)
    slots = k_cache.shape[2]
    return (jnp.einsum("bnst,bnsh->btnh", probs[:, :, :slots], v_cache)
            + jnp.einsum("bnst,bsnh->btnh", probs[:, :, slots:], v))


def _written(kv, k, v, at):
    """Caches kv [B, N, S, H] with new keys/values k, v [B, T, N, H] at slots at..at+T-1."""
    return tuple(jax.lax.dynamic_update_slice_in_dim(c, jnp.swapaxes(new, 1, 2), at, axis=2)
                 for c, new in zip(kv, (k, v)))


class Attention(nnx.Module):
    """Causal multi-head self-attention with partial rotary embeddings and no biases."""

    def __init__(self, d_model: int, n_heads: int, *, dtype, param_dtype, rngs: nnx.Rngs):
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        kw = dict(use_bias=False, dtype=dtype, param_dtype=param_dtype, kernel_init=INIT,
                  rngs=rngs)
        self.qkv = nnx.Linear(d_model, 3 * d_model, **kw)
        self.out = nnx.Linear(d_model, d_model, **kw)

    def __call__(self, x, rope, mask, kv=None, index=None, last_only=False):
        """x [B, T, d] -> ([B, T, d], kv). With kv = (k, v) caches [B, N, S, H] and a slot
        `index`, attends over the cache's slots before `index` and this call's own keys
        (`decode_mask`), then writes those at slots index..index+T-1. A prefill (index PREFILL)
        attends over its own keys only and writes them at slots 0..T-1; with `last_only` (a
        prefill's last block) only the last query's output is computed ([B, 1, d])."""
        b, t, d = x.shape
        q, k, v = jnp.moveaxis(self.qkv(x).reshape(b, t, 3, self.n_heads, self.head_dim), 2, 0)
        q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        if kv is not None:
            k, v = k.astype(kv[0].dtype), v.astype(kv[1].dtype)
            q = q.astype(k.dtype)
            if index is not PREFILL:
                y = cached_attention(q, k, v, *kv, mask)
                # A data dependency (adding 0 x one output value) that orders the slot writes
                # after the reads of the old cache, so XLA writes them in place; without it,
                # XLA on CPU copied the whole cache twice per layer and step (decode steps of
                # the tiny model 2x slower). `optimization_barrier` did not survive to the
                # copy-insertion pass.
                k, v = (a + 0 * y[:, :1, :1, :1].astype(a.dtype) for a in (k, v))
                return self.out(y.reshape(b, t, d)), _written(kv, k, v, index)
            kv = _written(kv, k, v, 0)
        if last_only:
            q, t = q[:, -1:], 1
            last_mask = None if mask is None else mask[:, :, -1:]
            y = jax.nn.dot_product_attention(q, k, v, mask=last_mask)
        elif mask is None:
            y = causal_attention(q, k, v)
        else:
            y = jax.nn.dot_product_attention(q, k, v, mask=mask)
        return self.out(y.reshape(b, t, d)), kv


class MLP(nnx.Module):
    """d_model -> d_mlp (tanh-GELU) -> d_model, with biases."""

    def __init__(self, d_model: int, d_mlp: int, *, dtype, param_dtype, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, kernel_init=INIT, rngs=rngs)
        self.fc_in = nnx.Linear(d_model, d_mlp, **kw)
        self.fc_out = nnx.Linear(d_mlp, d_model, **kw)

    def __call__(self, x):
        return self.fc_out(jax.nn.gelu(self.fc_in(x), approximate=True))


def _layer_norm(d_model, dtype, param_dtype, rngs):
    return nnx.LayerNorm(d_model, epsilon=LN_EPS, use_fast_variance=False, dtype=dtype,
                         param_dtype=param_dtype, rngs=rngs)


class Block(nnx.Module):
    """Parallel residual block: x + Attn(LN x) + MLP(LN x), one shared LayerNorm."""

    def __init__(self, d_model, n_heads, d_mlp, *, dtype, param_dtype, rngs: nnx.Rngs):
        self.ln = _layer_norm(d_model, dtype, param_dtype, rngs)
        self.attn = Attention(d_model, n_heads, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.mlp = MLP(d_model, d_mlp, dtype=dtype, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, x, rope, mask, kv=None, index=None, last_only=False):
        """x [B, T, d] -> (x', kv); with `last_only`, x' is the last position's only [B, 1, d]."""
        h = self.ln(x)
        a, kv = self.attn(h, rope, mask, kv, index, last_only)
        if last_only:
            x, h = x[:, -1:], h[:, -1:]
        return x + a + self.mlp(h), kv


class Transformer(nnx.Module):
    """Decoder-only LM: tokens [B, T] int -> logits [B, T, vocab_size] float32."""

    def __init__(self, vocab_size: int, d_model: int, n_layers: int, n_heads: int, d_mlp: int,
                 rotary_dim: int, *, dtype=jnp.float32, param_dtype=jnp.float32,
                 rngs: nnx.Rngs):
        if d_model % n_heads or rotary_dim % 2 or not 0 <= rotary_dim <= d_model // n_heads:
            raise ValueError(f"bad sizes: d_model {d_model}, n_heads {n_heads}, "
                             f"rotary_dim {rotary_dim}")
        self.n_layers, self.n_heads, self.head_dim = n_layers, n_heads, d_model // n_heads
        self.rotary_dim, self.dtype = rotary_dim, jnp.dtype(dtype)
        self.embed = nnx.Embed(vocab_size, d_model, dtype=dtype, param_dtype=param_dtype,
                               embedding_init=INIT, rngs=rngs)
        self.blocks = nnx.List([
            Block(d_model, n_heads, d_mlp, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
            for _ in range(n_layers)])
        self.ln_f = _layer_norm(d_model, dtype, param_dtype, rngs)
        self.head = nnx.Linear(d_model, vocab_size, dtype=jnp.float32, param_dtype=param_dtype,
                               kernel_init=INIT, rngs=rngs)

    def __call__(self, tokens: jax.Array, positions: jax.Array | None = None,
                 attention_mask: jax.Array | None = None, *, capture: bool = False) -> jax.Array:
        """Logits [B, T, V] float32 of tokens [B, T].

        positions: rotary positions [B, T] (default 0..T-1). Rotary attention depends only on
          position differences, so left padding needs just the mask; passing
          `positions_from_mask(attention_mask)` (real tokens from 0) makes the real positions'
          arithmetic the same as for the unpadded sequence.
        attention_mask: [B, T], True/1 = real token; padding keys are hidden from every other
          query. Logits at padding positions are meaningless.
        capture: sow the residual stream (use `forward_with_states`, which sets it under
          `nnx.capture`); off by default, and then nothing is sown.
        """
        t = tokens.shape[1]
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(t), tokens.shape)
        mask = None if attention_mask is None else causal_mask(jnp.arange(t), attention_mask, t)
        x, _ = self._trunk(tokens, positions, mask, None, None, capture)
        return self.head(x)

    def decode(self, tokens: jax.Array, cache: KVCache, index, positions: jax.Array,
               key_mask: jax.Array | None = None) -> tuple[jax.Array, KVCache]:
        """Runs tokens [B, T] as cache slots index..index+T-1 (index: scalar, same for the batch).

        Returns (logits [B, T, V] float32, updated cache). positions [B, T] are the rotary
        positions; key_mask [B, S] (True = real token) hides padded cache slots, slots after the
        query are hidden anyway. Prefill the prompt with index 0, then feed one token at a time.
        """
        t, s = tokens.shape[1], cache.k[0].shape[2]
        mask = decode_mask(index, t, key_mask, s)
        x, kvs = self._trunk(tokens, positions, mask, tuple(zip(cache.k, cache.v)), index, False)
        return self.head(x), KVCache(*(tuple(z) for z in zip(*kvs)))

    def prefill(self, tokens: jax.Array, cache: KVCache, positions: jax.Array,
                key_mask: jax.Array | None = None) -> tuple[jax.Array, KVCache]:
        """`decode` of a prompt at cache slots 0..T-1, cheaper: attention runs over the prompt's
        own T keys (not all S slots), and the last block computes keys and values for every
        position but its attention, MLP and logits for the last position only.
        Returns (logits [B, V] float32 of the last position, updated cache)."""
        t = tokens.shape[1]
        mask = None if key_mask is None else causal_mask(jnp.arange(t), key_mask[:, :t], t)
        x, kvs = self._trunk(tokens, positions, mask, tuple(zip(cache.k, cache.v)), PREFILL,
                             False, last_only=True)
        return self.head(x[:, -1]), KVCache(*(tuple(z) for z in zip(*kvs)))

    def _trunk(self, tokens, positions, mask, kvs, index, capture, last_only=False):
        """The residual stream through every block and the final LayerNorm. `last_only`: the
        last block keeps the last position only (a prefill needs every position's keys and
        values but only the last position's output)."""
        rope = rotary_angles(positions, self.rotary_dim)
        x = self.embed(tokens)
        self._sow(capture, x)
        new_kvs = []
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x, kv = block(x, rope, mask, None if kvs is None else kvs[i], index,
                          last_only and i == last)
            new_kvs.append(kv)
            if i < last:     # the last block's output is kept after the final norm only
                self._sow(capture, x)
        x = self.ln_f(x)
        self._sow(capture, x)
        return x, new_kvs

    def _sow(self, capture, x):
        if capture:
            self.sow(nnx.Intermediate, STATES, x)


def init_cache(model: Transformer, batch: int, max_len: int, dtype=None) -> KVCache:
    """An all-zero cache of max_len slots (dtype defaults to the model's compute dtype)."""
    shape = (batch, model.n_heads, max_len, model.head_dim)
    zeros = tuple(jnp.zeros(shape, dtype or model.dtype) for _ in range(model.n_layers))
    return KVCache(zeros, zeros)


def forward_with_states(model: Transformer, tokens, positions=None, attention_mask=None):
    """(logits [B, T, V], states [n_layers + 1, B, T, d]): the same logits as `model(...)`, plus
    the residual stream: the embedding output, the outputs of blocks 1 .. n-1, and the last
    block's output after the final norm (logits = model.head(states[-1]))."""
    run = nnx.capture(lambda m, *args: m(*args, capture=True), nnx.Intermediate)
    logits, sown = run(model, tokens, positions, attention_mask)
    return logits, jnp.stack(sown[STATES].get_value())


def hidden_states(model: Transformer, tokens, positions=None, attention_mask=None) -> jax.Array:
    """The residual stream [n_layers + 1, B, T, d] (see `forward_with_states`)."""
    return forward_with_states(model, tokens, positions, attention_mask)[1]
