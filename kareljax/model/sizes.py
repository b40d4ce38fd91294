"""Named model sizes, model construction and parameter counting."""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from kareljax.data.tokens import VOCAB_SIZE
from kareljax.model.transformer import Transformer


@dataclasses.dataclass(frozen=True)
class ModelSize:
    """Transformer dimensions; `rotary_dim` counts rotated dims per head, `max_len` is the longest
    sequence (cache size) the model is meant for (rotary embeddings themselves have no limit)."""
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    d_mlp: int
    rotary_dim: int
    max_len: int

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


SIZES: dict[str, ModelSize] = {
    # CPU smoke tests: ~0.1 M parameters; one head of CodeGen's 64 dims (32 rotary). On CPU the
    # [B, heads, T, T] attention scores dominate decoding: 1 head decoded the 373-token icml
    # prompts ~1.8x faster than 4 heads of 16 (same parameters).
    "tiny": ModelSize(VOCAB_SIZE, d_model=64, n_layers=2, n_heads=1, d_mlp=256, rotary_dim=32,
                      max_len=1024),
    # The largest worth training on a 2-core CPU: ~1.8 M parameters, CodeGen's head geometry
    # (64-dim heads, 32 rotary). CPU time goes to the (B, heads, T, T) attention, so few wide
    # heads: 3 heads ran ~1.7x the tokens/s of 6 heads of 32 (B 8, T 512, loaded 2-core host).
    "small": ModelSize(VOCAB_SIZE, d_model=192, n_layers=4, n_heads=3, d_mlp=768, rotary_dim=32,
                       max_len=1024),
    # CodeGen-350M-mono dimensions (docs/spec.md §6) with kareljax's vocabulary: ~252 M parameters
    # (CodeGen's own 51,200-token vocabulary makes it 356.7 M).
    "icml": ModelSize(VOCAB_SIZE, d_model=1024, n_layers=20, n_heads=16, d_mlp=4096,
                      rotary_dim=32, max_len=2048),
}


def build_model(size: ModelSize, *, rngs: nnx.Rngs, dtype=jnp.float32) -> Transformer:
    """A freshly initialised Transformer of `size`, computing in `dtype`, float32 parameters."""
    return Transformer(size.vocab_size, size.d_model, size.n_layers, size.n_heads, size.d_mlp,
                       size.rotary_dim, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)


def count_params(model: nnx.Module) -> int:
    """Number of parameters; works on abstract models from `nnx.eval_shape` too."""
    return sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
