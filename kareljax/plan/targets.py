"""The hardware a plan compiles for: TPU slices and NVIDIA GPU hosts by their usual names, and
this host's CPU, each with its per-device memory, peak bfloat16 FLOP/s and memory bandwidth.

TPU devices come from libtpu's topology descriptions and GPU devices from the CUDA PJRT
plugin's, given a target description (`gpu_specs/*.txtpb`); both are compile-only devices, so a
CPU host compiles for them without having them (`pip install -e .[aot]`).

Peak and bandwidth figures are the vendors' published ones per JAX device (one TPU chip; v4 and
v5p chips are one device each, "megacore"):
- TPU v4: 275 TFLOP/s bf16, 32 GiB HBM at 1,200 GB/s (cloud.google.com/tpu/docs/v4);
- TPU v5e: 197 TFLOP/s, 16 GiB at 819 GB/s (cloud.google.com/tpu/docs/v5e);
- TPU v5p: 459 TFLOP/s, 95 GiB at 2,765 GB/s (cloud.google.com/tpu/docs/v5p);
- TPU v6e: 918 TFLOP/s, 32 GiB at 1,640 GB/s (cloud.google.com/tpu/docs/v6e);
- H100 SXM: 989 TFLOP/s dense bf16, 80 GB HBM3 at 3.35 TB/s (NVIDIA H100 datasheet);
- H200 SXM: 989 TFLOP/s, 141 GB HBM3e at 4.8 TB/s (NVIDIA H200 datasheet);
- A100 SXM 80 GB: 312 TFLOP/s, 80 GB HBM2e at 2.04 TB/s (NVIDIA A100 datasheet).
GPU memory is the device memory size in XLA's description of the card (`gpu_specs/`).
"""
from __future__ import annotations

import dataclasses
import os
from importlib import resources

from kareljax.config_files import ConfigError
from kareljax.errors import KareljaxError

GiB = 2 ** 30
SPEC_DIR = "gpu_specs"


class MissingCompilerError(KareljaxError, RuntimeError):
    """The TPU or GPU compiler a target needs is not installed."""


@dataclasses.dataclass(frozen=True)
class Chip:
    kind: str                    # what the plan prints
    memory_bytes: int            # per device
    peak_flops: float | None     # dense bfloat16 FLOP/s per device
    bandwidth: float | None      # memory bytes/s per device


CHIPS = {
    "v4": Chip("TPU v4", 32 * GiB, 275e12, 1.2e12),
    "v5e": Chip("TPU v5e", 16 * GiB, 197e12, 819e9),
    "v5p": Chip("TPU v5p", 95 * GiB, 459e12, 2.765e12),
    "v6e": Chip("TPU v6e", 32 * GiB, 918e12, 1.64e12),
    "h100": Chip("H100 SXM 80 GB", 84_942_979_072, 989e12, 3.35e12),
    "h200": Chip("H200 SXM 141 GB", 151_397_597_184, 989e12, 4.8e12),
    "a100": Chip("A100 SXM 80 GB", 85_100_068_864, 312e12, 2.039e12),
}


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    platform: str                # "tpu", "cuda" or "cpu"
    chip: Chip
    devices: int
    hosts: int
    topology: str = ""           # TPU "v4:2x2x1"; GPU "<slices>x<hosts>x<devices per host>"
    chip_config: str = "default"  # TPU: "megacore" for v4/v5p
    chips_per_host: tuple[int, int, int] = (2, 2, 1)
    gpu_spec: str = ""           # GPU: file name in gpu_specs/

    def build_devices(self) -> list:
        """This target's devices (compile-only for TPU and GPU targets)."""
        if self.platform == "cpu":
            import jax
            return jax.devices("cpu")
        from jax.experimental import topologies
        try:
            if self.platform == "tpu":
                _quiet_libtpu()
                desc = topologies.get_topology_desc(
                    self.topology, "tpu", chip_config_name=self.chip_config,
                    chips_per_host_bounds=self.chips_per_host, num_slices=1)
            else:
                # Compiling needs no CUDA runtime: skip the plugin's check for one, which fails
                # on a host without a GPU when JAX may start any backend.
                os.environ.setdefault("JAX_SKIP_CUDA_CONSTRAINTS_CHECK", "1")
                _cuda_plugin()
                desc = topologies.get_topology_desc(
                    platform="cuda", topology=self.topology,
                    target_config=gpu_spec(self.gpu_spec))
        except (RuntimeError, NotImplementedError) as e:
            if "not installed" in str(e) or "not implemented" in str(e):
                raise MissingCompilerError(
                    f"{self.name}: the {self.platform.upper()} compiler is not installed "
                    "(pip install -e .[aot])") from e
            raise
        devices = list(desc.devices)
        if len(devices) != self.devices:
            raise RuntimeError(f"{self.name}: expected {self.devices} devices, the topology "
                               f"has {len(devices)}")
        return devices


def _tpu(name: str, chip: str, topology: str, devices: int, hosts: int = 1,
         chips_per_host=(2, 2, 1)) -> Target:
    return Target(name, "tpu", CHIPS[chip], devices, hosts, topology,
                  "megacore" if chip in ("v4", "v5p") else "default", chips_per_host)


def _gpu(name: str, chip: str, per_host: int, hosts: int = 1) -> Target:
    return Target(name, "cuda", CHIPS[chip], per_host * hosts, hosts, f"1x{hosts}x{per_host}",
                  gpu_spec=f"{chip}.txtpb")


TARGETS: dict[str, Target] = {t.name: t for t in (
    _tpu("v4-8", "v4", "v4:2x2x1", 4),
    _tpu("v4-16", "v4", "v4:2x2x2", 8, hosts=2),
    _tpu("v4-32", "v4", "v4:2x2x4", 16, hosts=4),
    _tpu("v5e-1", "v5e", "v5e:1x1", 1, chips_per_host=(1, 1, 1)),
    _tpu("v5e-4", "v5e", "v5e:2x2", 4),
    _tpu("v5e-8", "v5e", "v5e:2x4", 8, chips_per_host=(2, 4, 1)),
    _tpu("v5e-16", "v5e", "v5e:4x4", 16, hosts=4),
    _tpu("v5p-8", "v5p", "v5:2x2x1", 4),
    _tpu("v6e-1", "v6e", "v6e:1x1", 1, chips_per_host=(1, 1, 1)),
    _tpu("v6e-8", "v6e", "v6e:2x4", 8, chips_per_host=(2, 4, 1)),
    _gpu("h100", "h100", 1),
    _gpu("h100x8", "h100", 8),
    _gpu("h200", "h200", 1),
    _gpu("a100", "a100", 1),
    _gpu("a100x8", "a100", 8),
)}


def cpu_target() -> Target:
    """This host: its XLA CPU devices sharing its memory; no roofline (peak unknown)."""
    import jax
    devices = len(jax.devices("cpu"))
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return Target("cpu", "cpu", Chip("this host's CPU", memory // devices, None, None), devices, 1)


def resolve(name: str) -> Target:
    """The target called `name`; ConfigError listing the known ones otherwise."""
    if name == "cpu":
        return cpu_target()
    if name not in TARGETS:
        raise ConfigError(f"--target: unknown target {name!r}; known: cpu, "
                          + ", ".join(TARGETS))
    return TARGETS[name]


def gpu_spec(file_name: str) -> str:
    """A GPU target description (XLA's GpuTargetConfigProto, text format) shipped in
    kareljax/plan/gpu_specs/."""
    return resources.files("kareljax.plan").joinpath(SPEC_DIR, file_name).read_text()


def _cuda_plugin() -> None:
    """The CUDA compiler plugin, loaded if kareljax held it back at start-up. Its library logs
    "Could not find cuda drivers" to the process's stderr as it loads, which on a host without
    a GPU is expected: that stream is silenced while it loads (Python's exceptions still carry
    any failure)."""
    import logging
    from kareljax import platform
    logging.getLogger(platform.CUDA_PLUGIN).setLevel(logging.ERROR)  # "extension not found"
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            platform.load_cuda_plugin()
    except ModuleNotFoundError as e:
        raise RuntimeError("the CUDA plugin is not installed") from e
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _quiet_libtpu() -> None:
    """libtpu looks for the TPU VM it runs on when it starts and warns when there is none; on a
    host without TPUs these variables tell it that it compiles for a one-worker slice, which the
    topology then overrides (they do not change the devices or the compiled code), and that
    other processes may load it too."""
    from kareljax import platform
    if platform.has_accelerator():
        return
    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
    os.environ.setdefault("TPU_ACCELERATOR_TYPE", "v5litepod-1")
    os.environ.setdefault("TPU_WORKER_ID", "0")
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
    # libtpu takes a lock file so that one process drives the chips; compiling drives none, and
    # two plans (or a plan and a test) may compile at once.
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
