"""Inference data-parallel over a mesh: the model replicated on every device (of every process),
a batch's rows split over them (decoding in `eval` and `collect`, the hidden-state forward pass of
`collect`).

    mesh = data_parallel.batch_mesh()                 # every device of every process
    model = data_parallel.replicate(model, mesh)
    rows, n = data_parallel.shard_rows(prompts, mesh) # padded to a multiple of the device count
    out = data_parallel.to_host(decode(model, rows), n)

The code path follows the model: `mesh_of(params)` is the mesh its parameters are replicated over
(None on one device), so the same calls run on one CPU, a GPU host or a TPU pod slice. Every
process passes the same host rows; each device computes its own; `to_host` gathers the rows on
every process (across hosts with `multihost_utils.process_allgather`).
"""
from __future__ import annotations

import jax
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "batch"


def batch_mesh(devices=None) -> Mesh:
    """A 1-D mesh (axis "batch") over `devices` (default: every device of every process)."""
    return Mesh(np.array(jax.devices() if devices is None else list(devices)), (AXIS,))


def replicate(model: nnx.Module, mesh: Mesh) -> nnx.Module:
    """`model` with its parameters replicated on every device of `mesh` (from the host, so a
    model on one device, or another mesh, moves)."""
    graphdef, params = nnx.split(model)
    host = jax.tree.map(np.asarray, params)
    sharding = NamedSharding(mesh, P())
    placed = jax.tree.map(
        lambda a: jax.make_array_from_callback(a.shape, sharding, lambda i, a=a: a[i]), host)
    return nnx.merge(graphdef, placed)


def mesh_of(tree) -> Mesh | None:
    """The mesh the arrays of `tree` are replicated over when it has several devices, else None."""
    sharding = getattr(next(iter(jax.tree.leaves(tree)), None), "sharding", None)
    multi = isinstance(sharding, NamedSharding) and sharding.mesh.size > 1
    return sharding.mesh if multi else None


def shard_rows(rows, mesh: Mesh | None) -> tuple[jax.Array | np.ndarray, int]:
    """(`rows` split on their first axis over every device of `mesh`, padded by repeating the
    last row to a multiple of the device count; the real row count). No mesh: `rows` as is."""
    rows = np.asarray(rows)
    n = len(rows)
    if mesh is None:
        return rows, n
    pad = -n % mesh.size
    if pad:
        rows = np.concatenate([rows, np.repeat(rows[-1:], pad, axis=0)])
    sharding = NamedSharding(mesh, P(mesh.axis_names))
    return jax.make_array_from_callback(rows.shape, sharding, lambda i: rows[i]), n


def to_host(array, n: int | None = None) -> np.ndarray:
    """The first `n` rows of `array` as a numpy array on every process."""
    if isinstance(array, jax.Array) and not array.is_fully_addressable:
        array = multihost_utils.process_allgather(array, tiled=True)
    array = np.asarray(array)
    return array if n is None else array[:n]
