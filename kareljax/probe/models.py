"""Probe models (docs/spec.md §9) as pure functions of a parameter pytree, so many train under `vmap`.

Depths: `linear`; `mlp1`, one hidden layer of 256; `mlp2`, 256 -> 1024. Between layers: ReLU, then
LayerNorm ([D]: the original used BatchNorm; LayerNorm has no batch statistics to carry, which keeps
thousands of vmapped probes stateless; inputs are z-scored with val statistics either way).

Every task's heads share one output layer of `num_outputs` logits; `HeadLayout` says which logits
belong to which head, so probes of different tasks have the same shapes and train in one vmap.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

DEPTHS = {"linear": (), "mlp1": (256,), "mlp2": (256, 1024)}
_LN_EPS = 1e-5


def init(key, d_in: int, hidden: tuple[int, ...], num_outputs: int) -> dict:
    """Parameters: per layer a weight (scaled normal, 1/sqrt(fan in)) and zero bias; LayerNorm
    scale/offset after each hidden layer."""
    sizes = (d_in,) + tuple(hidden) + (num_outputs,)
    keys = jax.random.split(key, len(sizes) - 1)
    layers = [{"w": jax.random.normal(k, (a, b)) / np.sqrt(a), "b": jnp.zeros(b)}
              for k, a, b in zip(keys, sizes[:-1], sizes[1:])]
    norms = [{"scale": jnp.ones(h), "offset": jnp.zeros(h)} for h in hidden]
    return {"layers": layers, "norms": norms}


def apply(params: dict, x: jax.Array) -> jax.Array:
    """Logits [B, num_outputs] of inputs [B, d_in]."""
    first = params["layers"][0]
    return after_first(params, x @ first["w"] + first["b"])


def after_first(params: dict, z: jax.Array) -> jax.Array:
    """The rest of `apply`, from the first layer's output z [B, width] (logits when linear)."""
    layers, norms = params["layers"], params["norms"]
    for i, norm in enumerate(norms):
        x = jax.nn.relu(z)
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        x = (x - mean) * jax.lax.rsqrt(var + _LN_EPS) * norm["scale"] + norm["offset"]
        z = x @ layers[i + 1]["w"] + layers[i + 1]["b"]
    return z


def group_apply(params: dict, x: jax.Array) -> jax.Array:
    """Logits [P, B, num_outputs] of P probes (leading axis on every parameter) on shared inputs
    x [B, d_in]. The first layer of all probes is one matmul ([B, d] x [d, P * width]), which XLA
    runs several times faster than a vmapped (batched) one."""
    first = params["layers"][0]
    z = jnp.einsum("bd,pdh->bph", x, first["w"]) + first["b"][None]
    return jax.vmap(after_first, in_axes=(0, 1))(params, z)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class HeadLayout:
    """Which output logits belong to which head, for tasks padded to `num_heads` x `num_outputs`.

    mask bool [num_heads, num_outputs]; offset int32 [num_heads] (first logit of each head);
    valid bool [num_heads] (the task has this head).
    """

    mask: np.ndarray
    offset: np.ndarray
    valid: np.ndarray

    @classmethod
    def of(cls, heads: tuple[int, ...], num_heads: int, num_outputs: int) -> "HeadLayout":
        if len(heads) > num_heads or sum(heads) > num_outputs:
            raise ValueError(f"heads {heads} do not fit {num_heads} heads / {num_outputs} logits")
        mask = np.zeros((num_heads, num_outputs), bool)
        offset = np.zeros(num_heads, np.int32)
        start = 0
        for h, size in enumerate(heads):
            mask[h, start:start + size] = True
            offset[h] = start
            start += size
        valid = np.arange(num_heads) < len(heads)
        mask[~valid, 0] = True  # keeps absent heads finite; their loss is masked out
        return cls(mask, offset, valid)


def head_logits(logits, mask):
    """[B, heads, outputs] logits with other heads' logits at -inf."""
    return jnp.where(mask[None], logits[:, None, :], -jnp.inf)


def loss_and_correct(logits, labels, layout: HeadLayout):
    """(mean cross-entropy summed over heads, bool [B] all heads right) for labels [B, heads]."""
    per_head = head_logits(logits, layout.mask)
    lse = jax.nn.logsumexp(per_head, axis=-1)
    target = jnp.take_along_axis(logits, layout.offset[None] + jnp.maximum(labels, 0), axis=1)
    loss = ((lse - target) * layout.valid[None]).sum(-1).mean()
    predicted = jnp.argmax(per_head, axis=-1) - layout.offset[None]
    correct = ((predicted == labels) | ~layout.valid[None]).all(-1)
    return loss, correct
