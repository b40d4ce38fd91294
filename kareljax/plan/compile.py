"""Compiling one stage for one target and reading what XLA says of it: per-device memory and
FLOPs (XLA's cost analysis where it counts the whole call, the formula otherwise), and the
roofline time of a call from the target's peak FLOP/s and memory bandwidth (the formula's bytes:
see `flops`)."""
from __future__ import annotations

import time

from kareljax.plan.stages import Stage
from kareljax.plan.targets import Target

# Compiling without a GPU, XLA cannot autotune and takes the first GEMM configuration it has,
# a Triton tiling that some dots cannot use (a bf16[32592, 1024] dot fed by a transpose fails
# with "Couldn't find output tile sizes"); on a GPU the autotuner drops such configurations and
# falls back to cuBLAS. A device-less compile uses cuBLAS for every dot instead.
GPU_OPTIONS = {"xla_gpu_enable_triton_gemm": False}
OUT_OF_MEMORY = ("RESOURCE_EXHAUSTED", "Ran out of memory", "exceeds the memory")


def compiler_options(target: Target) -> dict:
    return dict(GPU_OPTIONS) if target.platform == "cuda" else {}


def compile_stage(stage: Stage, target: Target):
    """(the compiled stage or None, seconds, the error text if the compile failed)."""
    start = time.perf_counter()
    try:
        compiled = stage.lower().compile(compiler_options=compiler_options(target) or None)
    except Exception as e:  # noqa: BLE001  XLA raises JaxRuntimeError/ValueError/... by cause
        return None, time.perf_counter() - start, f"{type(e).__name__}: {e}"
    return compiled, time.perf_counter() - start, None


def memory(compiled) -> dict:
    """Per-device bytes: arguments, outputs, temporaries, generated code and the peak (XLA's
    own peak where it gives one, else arguments + outputs - aliased + temporaries + code)."""
    m = compiled.memory_analysis()
    out = {"argument_bytes": m.argument_size_in_bytes, "output_bytes": m.output_size_in_bytes,
           "alias_bytes": m.alias_size_in_bytes, "temp_bytes": m.temp_size_in_bytes,
           "generated_code_bytes": m.generated_code_size_in_bytes}
    computed = (out["argument_bytes"] + out["output_bytes"] - out["alias_bytes"]
                + out["temp_bytes"] + out["generated_code_bytes"])
    out["peak_bytes_per_device"] = max(getattr(m, "peak_memory_in_bytes", 0) or 0, computed)
    return out


def cost(compiled) -> dict | None:
    """XLA's cost analysis of one device's program ({"flops", "bytes accessed", ...}), None
    where the backend gives none (GPU)."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0] if analysis else None
    return analysis or None


def analyse(stage: Stage, target: Target, compiled, seconds: float, error: str | None) -> dict:
    """The plan's row for `stage` on `target`."""
    row = {"target": target.name, "stage": stage.name, "devices": stage.devices,
           "device_memory_bytes": target.chip.memory_bytes, "detail": stage.detail,
           "compile_seconds": round(seconds, 2), "calls": stage.calls}
    if compiled is None:
        oom = any(s in error for s in OUT_OF_MEMORY)
        return {**row, "fits": False, "compiled": False, "error": error.splitlines()[0][:500],
                "out_of_memory": oom, "peak_bytes_per_device": None, "flops": stage.flops,
                "flops_source": "formula", "seconds_roofline": None}
    mem = memory(compiled)
    xla = cost(compiled)
    if xla is not None and stage.xla_counts_all and "flops" in xla:
        total_flops, source = float(xla["flops"]) * stage.devices, "xla"
    else:
        total_flops, source = stage.flops, "formula"
    per_device_bytes = stage.bytes_per_device
    chip = target.chip
    roofline = None
    if chip.peak_flops and chip.bandwidth:
        roofline = max(total_flops / stage.devices / chip.peak_flops,
                       per_device_bytes / chip.bandwidth)
    return {**row, **mem, "fits": mem["peak_bytes_per_device"] <= chip.memory_bytes,
            "compiled": True, "flops": total_flops, "flops_source": source,
            "xla_flops": None if xla is None else float(xla.get("flops", 0)) * stage.devices,
            "bytes_per_device": per_device_bytes,
            "xla_bytes_accessed": None if xla is None else xla.get("bytes accessed"),
            "seconds_roofline": roofline}
