"""World-steps per second of the JAX interpreter vs the reference interpreter, same machine and run.

One world-step is one executed action. Both engines are timed as the best of --repeats runs
(the least disturbed one: XLA's worker threads may still be spinning after a call). Workloads:
  straight_len10   straight-line programs of 10 actions (the paper's action weights), 10 worlds each
  straight_len10_traced   the same, also recording the full action trace
  control_flow     grammar-random programs with if, ifelse, repeat and while (kareljax.karel.sampling)

Usage: python benchmarks/interpreter.py [--programs N] [--repeats R]
Prints one JSON object per workload.
"""
from __future__ import annotations

from kareljax import platform

platform.configure()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from kareljax.data.worlds import random_worlds  # noqa: E402
from kareljax.karel import bytecode, interpreter, reference, sampling, world  # noqa: E402

REFERENCE_PAIRS = 5000  # (program, world) pairs timed with the reference interpreter


def time_jax(code, worlds, repeats: int, **kwargs) -> tuple[float, int]:
    """Best seconds of one execute() call (compiled beforehand) and the actions it executed."""
    for _ in range(3):  # compile, then let the allocator settle
        out = jax.block_until_ready(interpreter.execute(code, worlds, **kwargs))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(interpreter.execute(code, worlds, **kwargs))
        seconds.append(time.perf_counter() - start)
    return min(seconds), int(np.asarray(out.num_actions).sum())


def time_reference(programs, worlds, max_steps: int, repeats: int,
                   record: bool) -> tuple[float, int]:
    """Best seconds of `repeats` runs over the first REFERENCE_PAIRS (program, world) pairs, and
    the actions they executed.

    The reference records traces only when the JAX run does, so both do the same work.
    """
    host = jax.tree.map(np.asarray, worlds)
    per_program = host.row.shape[1]
    pairs = [(p, e) for p in range(len(programs)) for e in range(per_program)][:REFERENCE_PAIRS]
    singles = [world.World(*(getattr(host, f)[p, e] for f in ("walls", "markers", "row", "col",
                                                              "facing"))) for p, e in pairs]
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        steps = sum(reference.run(programs[p], w, max_steps=max_steps, record=record)
                    .actions_executed for (p, _), w in zip(pairs, singles))
        seconds.append(time.perf_counter() - start)
    return min(seconds), steps


def workload(name, programs, num_worlds, repeats, max_steps, trace_len=0, seed=0):
    code = bytecode.compile_batch(programs)
    worlds = interpreter.shard_by_program(
        random_worlds(jax.random.key(seed), (len(programs), num_worlds)))
    # The reference goes first, so XLA's worker threads are idle while it runs.
    ref_s, ref_steps = time_reference(programs, worlds, max_steps, repeats,
                                      record=trace_len > 0)
    jax_s, jax_steps = time_jax(code, worlds, repeats, max_steps=max_steps, trace_len=trace_len,
                                max_markers=1)  # random worlds hold at most one marker a cell
    jax_rate, ref_rate = jax_steps / jax_s, ref_steps / ref_s
    return {
        "workload": name,
        "jax_steps_per_s": round(jax_rate),
        "reference_steps_per_s": round(ref_rate),
        "ratio": round(jax_rate / ref_rate, 1),
        "pairs": len(programs) * num_worlds,
        "jax_seconds_per_call": round(jax_s, 4),
        "mean_actions_per_pair": round(jax_steps / (len(programs) * num_worlds), 2),
        "max_steps": max_steps,
        "trace_len": trace_len,
        "devices": f"{len(jax.local_devices())} x {jax.default_backend()}",
        "cpus": os.cpu_count(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=100_000, help="programs per workload")
    parser.add_argument("--worlds", type=int, default=10, help="worlds per program")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    straight = [sampling.random_straight_program(rng, 10) for _ in range(args.programs)]
    mixed = [sampling.random_program(rng, max_depth=2, max_block=3, weights=(6, 1, 1, 0.5, 1))
             for _ in range(args.programs)]
    runs = [
        ("straight_len10", straight, dict(max_steps=reference.DEFAULT_MAX_STEPS)),
        ("straight_len10_traced", straight, dict(max_steps=reference.DEFAULT_MAX_STEPS,
                                                 trace_len=11)),
        ("control_flow", mixed, dict(max_steps=200)),
    ]
    for name, programs, kwargs in runs:
        print(json.dumps(workload(name, programs, args.worlds, args.repeats, **kwargs)), flush=True)


if __name__ == "__main__":
    main()
