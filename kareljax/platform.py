"""Process-level JAX settings that must be made before JAX starts its backends."""
from __future__ import annotations

import glob
import os
import sys

_COUNT_FLAG = "--xla_force_host_platform_device_count"
# Device files of the accelerators JAX drives: TPU v2-v4 and v5p chips (/dev/accel*), TPU v5e and
# later (/dev/vfio/*), NVIDIA GPUs (/dev/nvidia0, ...), AMD GPUs (/dev/kfd).
_ACCELERATOR_FILES = ("/dev/accel*", "/dev/vfio/[0-9]*", "/dev/nvidia[0-9]*", "/dev/kfd")


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


def has_accelerator() -> bool:
    """Whether this host has a device file of a TPU or GPU."""
    return any(glob.glob(pattern) for pattern in _ACCELERATOR_FILES)


def cpu_only_without_accelerator() -> None:
    """On a host with no TPU or GPU, starts JAX's CPU backend only (JAX_PLATFORMS=cpu) and keeps
    the CUDA compiler plugin from loading.

    With the `aot` extra installed (libtpu and the CUDA compiler plugin, for `kareljax plan`),
    JAX would otherwise try every installed accelerator plugin at start-up and print their
    failures on a CPU host. A JAX_PLATFORMS the user set is kept (the plugin is held back unless
    it names a GPU); hosts with an accelerator are left alone. Takes effect only before JAX
    starts its backends.
    """
    if has_accelerator():
        return
    if not os.environ.get("JAX_PLATFORMS"):
        os.environ["JAX_PLATFORMS"] = "cpu"
        if "jax" in sys.modules:
            import jax
            try:
                jax.config.update("jax_platforms", "cpu")
            except RuntimeError:   # the backends have started already: too late to change
                pass
    if not {"cuda", "gpu"} & set(os.environ["JAX_PLATFORMS"].split(",")):
        _hold_back_cuda_plugin()


CUDA_PLUGIN = "jax_plugins.xla_cuda12"   # the CUDA PJRT plugin's module (jax-cuda12-pjrt)


def _hold_back_cuda_plugin() -> None:
    """Keeps JAX from loading the CUDA plugin at start-up on a host without a GPU.

    JAX imports every installed plugin when it starts its backends, whatever JAX_PLATFORMS says,
    and loading the CUDA plugin's library logs "Could not find cuda drivers" to stderr. A stand-in
    module with a no-op `initialize` takes its place; `kareljax plan`, which compiles for GPUs
    with it, loads the real one (`load_cuda_plugin`).
    """
    import types
    if CUDA_PLUGIN not in sys.modules:
        stand_in = types.ModuleType(CUDA_PLUGIN)
        stand_in.initialize = lambda: None
        stand_in.held_back_by_kareljax = True
        sys.modules[CUDA_PLUGIN] = stand_in


def load_cuda_plugin() -> None:
    """Registers JAX's CUDA plugin (for compiling, not running) if `_hold_back_cuda_plugin` kept
    it out; ModuleNotFoundError if it is not installed."""
    import importlib
    module = sys.modules.get(CUDA_PLUGIN)
    if module is None or getattr(module, "held_back_by_kareljax", False):
        sys.modules.pop(CUDA_PLUGIN, None)
        module = importlib.import_module(CUDA_PLUGIN)
        module.initialize()


def configure() -> None:
    """Both settings above; the command line calls it before anything imports JAX."""
    cpu_only_without_accelerator()
    use_all_cpu_cores()
