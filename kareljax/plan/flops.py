"""FLOPs and bytes of each stage by formula, for what XLA's cost analysis cannot count: it
counts a loop's body once whatever its trip count (the decode loop, the probe fit's steps, the
micro-batches of gradient accumulation), and a GPU compile gives no cost analysis at all.

XLA's "bytes accessed" counts every operand of every operation, also those a fusion keeps in
on-chip memory, so it is no measure of memory traffic: the roofline uses the formulas' bytes.

Matmul FLOPs are counted as in PaLM's appendix B: 2·N per token forward and 6·N forward and
backward for the N parameters, plus 4 · n_layers · d_model · T per token for the attention
scores and weighted sums over T keys forward (12 · ... forward and backward), the full T × T
matrix (the causal half is not subtracted: XLA computes it).
"""
from __future__ import annotations

import functools

from kareljax.model.sizes import ModelSize, build_model, count_params

FLOAT32 = 4


@functools.lru_cache(maxsize=None)
def params_of(size: ModelSize) -> int:
    """Parameters of a model of `size` (`sizes.count_params` of an abstract one: no arrays)."""
    from flax import nnx
    return count_params(nnx.eval_shape(lambda: build_model(size, rngs=nnx.Rngs(0))))


def train_step(size: ModelSize, sequences: int, length: int) -> float:
    """One optimizer step over `sequences` sequences of `length` slots (all micro-batches)."""
    attention = 12 * size.n_layers * size.d_model * length
    return sequences * length * (6 * params_of(size) + attention)


def forward(size: ModelSize, sequences: int, length: int) -> float:
    """One forward pass over `sequences` sequences of `length` tokens."""
    attention = 4 * size.n_layers * size.d_model * length
    return sequences * length * (2 * params_of(size) + attention)


def decode(size: ModelSize, batch: int, prompt: int, new: int) -> float:
    """A prefill of `prompt` tokens, then `new` one-token steps attending over every cache slot
    (prompt + new), for `batch` sequences: the decode loop at its longest."""
    step = 2 * params_of(size) + 4 * size.n_layers * size.d_model * (prompt + new)
    return forward(size, batch, prompt) + batch * new * step


def train_step_bytes(size: ModelSize, tokens_per_device: int, fsdp: int,
                     dtype_bytes: int) -> float:
    """Memory traffic of one optimizer step on one device, roughly: the float32 parameters read
    forward and backward, the gradients written, and the AdamW update reading and writing the
    parameters and both moments (36 bytes a parameter, over `fsdp` shards), plus the
    activations kept for the backward pass written and read back (34 · d_model bytes a token a
    layer in 16-bit, Korthikanti et al. 2022, scaled by the compute dtype's size)."""
    weights = 36 * params_of(size) / fsdp
    activations = 2 * 34 * tokens_per_device * size.n_layers * size.d_model * dtype_bytes / 2
    return weights + activations


def forward_bytes(size: ModelSize, tokens: int, dtype_bytes: int) -> float:
    """Memory traffic of a forward pass on one device: the float32 parameters once and every
    layer's activations written and read (about 10 values of d_model a token a layer)."""
    return FLOAT32 * params_of(size) + 10 * tokens * size.n_layers * size.d_model * dtype_bytes


def decode_bytes(size: ModelSize, batch: int, prompt: int, new: int, dtype_bytes: int) -> float:
    """Memory read by the decode loop on one device: the parameters (float32) and the KV cache
    at every one of its `new` steps."""
    cache = 2 * size.n_layers * batch * (prompt + new) * size.d_model * dtype_bytes
    return (new + 1) * (FLOAT32 * params_of(size) + cache)


def probe_weights(widths: tuple[int, ...]) -> int:
    """Weights and biases of one probe with layer widths (inputs, hidden..., outputs)."""
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def fit(probes: int, widths: tuple[int, ...], steps: int, batch: int, eval_every: int,
        eval_rows: int) -> float:
    """One `fit` call: `probes` probes, `steps` minibatch steps forward and backward, and a
    scoring of `eval_rows` val + test rows every `eval_every` steps."""
    w = probe_weights(widths)
    return probes * (6 * steps * batch * w + 2 * (steps // eval_every) * eval_rows * w)


def fit_bytes(probes: int, widths: tuple[int, ...], steps: int, batch: int) -> float:
    """Memory traffic of one `fit` call on one device, roughly: per step, each probe's weights,
    gradients and two AdamW moments read and written, and the minibatch's inputs gathered."""
    return steps * (probes * 8 * FLOAT32 * probe_weights(widths) + batch * widths[0] * FLOAT32)
