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
    valid bool [num_heads] (the task has this head); group int32 [num_heads] or None: the output
    (a set of heads) each head belongs to when a probe predicts several labels from one state
    (one output per shown example, docs/spec.md §8), scored as the mean over outputs of all of
    an output's heads right. None: one output.
    """

    mask: np.ndarray
    offset: np.ndarray
    valid: np.ndarray
    group: np.ndarray | None = None

    @classmethod
    def of(cls, heads: tuple[int, ...], num_heads: int, num_outputs: int,
           groups: int = 1) -> "HeadLayout":
        """The layout of a task with `heads`, repeated for `groups` outputs."""
        every = tuple(heads) * groups
        if len(every) > num_heads or sum(every) > num_outputs:
            raise ValueError(f"heads {every} do not fit {num_heads} heads / {num_outputs} logits")
        mask = np.zeros((num_heads, num_outputs), bool)
        offset = np.zeros(num_heads, np.int32)
        start = 0
        for h, size in enumerate(every):
            mask[h, start:start + size] = True
            offset[h] = start
            start += size
        valid = np.arange(num_heads) < len(every)
        mask[~valid, 0] = True  # keeps absent heads finite; their loss is masked out
        group = None
        if groups > 1:
            group = np.where(valid, np.arange(num_heads) // max(len(heads), 1), 0).astype(np.int32)
        return cls(mask, offset, valid, group)


def head_logits(logits, mask):
    """[B, heads, outputs] logits with other heads' logits at -inf."""
    return jnp.where(mask[None], logits[:, None, :], -jnp.inf)


def loss_and_correct(logits, labels, layout: HeadLayout):
    """(mean cross-entropy summed over heads, [B] all heads right) for labels [B, heads]; with
    several outputs (`layout.group`), the fraction of outputs with all their heads right."""
    per_head = head_logits(logits, layout.mask)
    lse = jax.nn.logsumexp(per_head, axis=-1)
    target = jnp.take_along_axis(logits, layout.offset[None] + jnp.maximum(labels, 0), axis=1)
    loss = ((lse - target) * layout.valid[None]).sum(-1).mean()
    predicted = jnp.argmax(per_head, axis=-1) - layout.offset[None]
    right = (predicted == labels) | ~layout.valid[None]                  # [B, heads]
    if layout.group is None:
        return loss, right.all(-1)
    heads = layout.group.shape[0]
    member = (layout.group[:, None] == jnp.arange(heads)[None]) & layout.valid[:, None]
    present = member.any(0)                                              # [outputs]
    output_right = ~((~right)[:, :, None] & member[None]).any(1)         # [B, outputs]
    return loss, (output_right & present[None]).sum(-1) / jnp.maximum(present.sum(), 1)
