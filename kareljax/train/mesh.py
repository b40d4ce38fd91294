"""The device mesh of training and its sharding rules.

Axes ('data', 'fsdp'). Parameters and optimizer state are sharded over 'fsdp' on their largest
axis that 'fsdp' divides (replicated when none does, and on every 'data' row); a batch is split on
its batch axis over both axes together, so every device sees different sequences (data parallel
when fsdp = 1, ZeRO-3-style fully sharded when data = 1). XLA inserts the all-gathers and
reduce-scatters from these annotations (`jax.jit` with in/out shardings).
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from kareljax.config_files import ConfigError

AXES = ("data", "fsdp")
BATCH = ("data", "fsdp")   # the mesh axes a batch axis is split over


def axis_sizes(data: int, fsdp: int, num_devices: int, multi_process: bool = False
               ) -> tuple[int, int]:
    """(data, fsdp) with a -1 resolved to the devices left. Fewer devices than there are is
    allowed in a single process (the first ones are used), never across processes."""
    sizes = [data, fsdp]
    if -1 in sizes:
        i = sizes.index(-1)
        other = sizes[1 - i]
        if num_devices % other:
            raise ConfigError(f"train.mesh.{AXES[1 - i]}: {other} does not divide the "
                              f"{num_devices} devices")
        sizes[i] = num_devices // other
    used = sizes[0] * sizes[1]
    if used > num_devices or (multi_process and used != num_devices):
        raise ConfigError(f"train.mesh: data {sizes[0]} x fsdp {sizes[1]} = {used} devices, but "
                          f"there are {num_devices}")
    return sizes[0], sizes[1]


def make_mesh(data: int = -1, fsdp: int = 1, devices=None, multi_process: bool | None = None
              ) -> Mesh:
    """A ('data', 'fsdp') mesh over `devices` (default: all devices of all processes);
    `multi_process` (default: this run has several processes) requires every device used."""
    devices = jax.devices() if devices is None else list(devices)
    multi_process = jax.process_count() > 1 if multi_process is None else multi_process
    shape = axis_sizes(data, fsdp, len(devices), multi_process)
    devices = devices[:shape[0] * shape[1]]
    return jax.make_mesh(shape, AXES, axis_types=(AxisType.Auto,) * 2, devices=devices)


def param_spec(shape: tuple[int, ...], fsdp: int) -> P:
    """'fsdp' on the largest axis it divides (the first such among equals), else replicated."""
    if fsdp > 1:
        fits = [(size, -i) for i, size in enumerate(shape) if size % fsdp == 0]
        if fits:
            axis = -max(fits)[1]
            return P(*(("fsdp" if i == axis else None) for i in range(len(shape))))
    return P()


def state_shardings(abstract_state, mesh: Mesh):
    """NamedShardings for every leaf of a (possibly abstract) pytree of arrays."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree.map(lambda x: NamedSharding(mesh, param_spec(np.shape(x), fsdp)),
                        abstract_state)


def batch_sharding(mesh: Mesh, ndim: int, batch_axis: int = 0) -> NamedSharding:
    """Splits axis `batch_axis` of an `ndim`-dim array over ('data', 'fsdp')."""
    spec = [None] * ndim
    spec[batch_axis] = BATCH
    return NamedSharding(mesh, P(*spec))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_shards(mesh: Mesh) -> int:
    """How many parts a batch axis is split into."""
    return mesh.shape["data"] * mesh.shape["fsdp"]
