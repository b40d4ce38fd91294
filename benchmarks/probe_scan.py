"""Probe training speed: probes per second trained vmapped (`kareljax.probe.fit.fit` on many
probes at once) and one at a time (the same function called on one probe, looped), same data, same
options, same run, as JSON lines (one per depth, then the mix of the three).

    python benchmarks/probe_scan.py [--probes 90] [--loop-probes 6]

The data imitate a tiny-model collection: 64-dim states, 4,000 train / 1,024 val / 1,024 test
samples, a 13 x 13 task; options = `kareljax scan`'s cpu profile (60 steps of 64, eval every 30).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

from kareljax.probe import fit, models

OPTIONS = fit.FitOptions(steps=60, batch_size=64, eval_every=30)


def _inputs(probes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(n, 64)).astype(np.float32) for n in (4000, 1024, 1024)]
    layout = models.HeadLayout.of((13, 13), 4, 26)
    ys = []
    for x in xs:
        y = rng.integers(0, 13, (probes, len(x), 4)).astype(np.int32)
        y[..., 2:] = -1
        ys.append(y)
    stack = lambda a: np.broadcast_to(a, (probes,) + a.shape).copy()  # noqa: E731
    return xs, ys, [stack(layout.mask), stack(layout.offset), stack(layout.valid)]


def _run(hidden, xs, ys, layout, idx):
    out = fit.fit(jax.random.split(jax.random.key(0), 100)[idx], jax.random.key(1),
                  *(y[idx] for y in ys), *(a[idx] for a in layout), *xs, hidden=hidden,
                  num_outputs=26, options=OPTIONS)
    return jax.block_until_ready(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=90)
    parser.add_argument("--loop-probes", type=int, default=6)
    args = parser.parse_args()
    xs, ys, layout = _inputs(args.probes)
    totals = {"vmap": 0.0, "loop": 0.0}
    for depth, hidden in models.DEPTHS.items():
        together = np.arange(args.probes)
        _run(hidden, xs, ys, layout, together)                 # compile
        start = time.perf_counter()
        _run(hidden, xs, ys, layout, together)
        vmap_s = time.perf_counter() - start
        _run(hidden, xs, ys, layout, np.arange(1))             # compile the one-probe shape
        start = time.perf_counter()
        for p in range(args.loop_probes):
            _run(hidden, xs, ys, layout, np.arange(p, p + 1))
        loop_s = (time.perf_counter() - start) / args.loop_probes
        totals["vmap"] += vmap_s / args.probes
        totals["loop"] += loop_s
        print(json.dumps({"depth": depth, "probes": args.probes,
                          "probes_per_s_vmap": round(args.probes / vmap_s, 2),
                          "probes_per_s_loop": round(1 / loop_s, 2),
                          "vmap_speedup": round(loop_s * args.probes / vmap_s, 1)}), flush=True)
    print(json.dumps({"depth": "all three", "probes": 3 * args.probes,
                      "probes_per_s_vmap": round(3 / totals["vmap"], 2),
                      "probes_per_s_loop": round(3 / totals["loop"], 2),
                      "vmap_speedup": round(totals["loop"] / totals["vmap"], 1),
                      "steps": OPTIONS.steps, "batch_size": OPTIONS.batch_size,
                      "cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    main()
