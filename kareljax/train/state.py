"""The train state: its abstract shape, its shardings and its seeded initialisation.

state = {"params": nnx.State of the model's nnx.Param, "opt_state": optax state, "step": int32 []}
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx
from jax.sharding import Mesh

from kareljax.model.sizes import build_model
from kareljax.train import mesh as mesh_lib
from kareljax.train import train_config

PARAMS_STREAM = 0   # fold_in(key(train.seed), PARAMS_STREAM) seeds the parameters


def _model(model_cfg: ml_collections.ConfigDict, key) -> nnx.Module:
    return build_model(train_config.model_size(model_cfg), rngs=nnx.Rngs(key),
                       dtype=train_config.dtype(model_cfg))


def graphdef(model_cfg: ml_collections.ConfigDict) -> nnx.GraphDef:
    """The model's structure (no arrays are made)."""
    abstract = nnx.eval_shape(lambda: _model(model_cfg, jax.random.key(0)))
    return nnx.split(abstract, nnx.Param)[0]


def init_fn(model_cfg: ml_collections.ConfigDict, tx: optax.GradientTransformation):
    """key -> a fresh train state (pure, so it can be jitted straight into its shardings)."""

    return lambda key: _around(nnx.state(_model(model_cfg, key), nnx.Param), tx)


def _around(params, tx):
    """The state at step 0 around `params`: a fresh optimizer state."""
    return {"params": params, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}


def params_key(seed: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), PARAMS_STREAM)


def abstract_state(model_cfg, tx, mesh: Mesh):
    """(ShapeDtypeStructs of the state, carrying their shardings on `mesh`; the shardings)."""
    shapes = jax.eval_shape(init_fn(model_cfg, tx), params_key(0))
    shardings = mesh_lib.state_shardings(shapes, mesh)
    abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                            shapes, shardings)
    return abstract, shardings


def init_state(model_cfg, tx, seed: int, shardings):
    """A fresh state made directly in its shardings (no full copy on any one device)."""
    return jax.jit(init_fn(model_cfg, tx), out_shardings=shardings)(params_key(seed))


def warm_state(params, tx, shardings):
    """A state around `params` (another run's checkpoint): a fresh optimizer state, step 0."""
    return jax.jit(lambda p: _around(p, tx), out_shardings=shardings)(params)
