"""Process-level JAX settings that must be made before JAX is imported."""
from __future__ import annotations

import os
import sys

_COUNT_FLAG = "--xla_force_host_platform_device_count"


def use_all_cpu_cores() -> None:
    """Exposes one XLA CPU device per core, so sharded work uses every core.

    One XLA CPU device runs its computation mostly on one core; kareljax shards batches over a
    device mesh, so on a CPU host this turns the cores into a mesh. No effect if JAX is already
    imported or the flag is set; on GPU/TPU hosts it only adds CPU devices nobody uses.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" in sys.modules or _COUNT_FLAG in flags:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os.environ["XLA_FLAGS"] = f"{flags} {_COUNT_FLAG}={max(1, cores or 1)}".strip()
