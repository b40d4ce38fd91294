"""Probe scan speed: `kareljax.probe.fit.fit_sharded` on every device of this host against one
device, and against the matmuls it runs, alone. JSON lines: one per depth, then one for the three
together (the scan trains as many probes of each depth).

    python benchmarks/probe_scan.py [--probes 180] [--depths linear,mlp1,mlp2] [--loop-probes 0]

Per depth: probes/s on all devices and on one (the same probes, each device count in the calls
and blocks `jobs.chunking` gives it). `devices_speedup` is all devices over one device's share of
the host: on GPU and TPU one device; on a CPU host one device held to one core, the unit kareljax's
CPU platform gives each device (`platform.configure`), because one unpinned XLA CPU device runs
its YNNPACK matmuls on a thread pool of every core (docs/decisions.md, "one CPU device is one
core"); `devices_speedup_vs_unpinned_device` is the ratio against that unpinned device. Then the
fit's FLOP/s (an exact count of its
matmuls: forward, weight and input gradients of each training step, forward passes of the
scoring), and `matmul_peak_fraction`: that FLOP/s over the FLOP/s of the same einsums, same
shapes, same loops and blocks, run alone on all devices (`matmul_skeleton`: nothing but the
matmuls, no optimizer, norms, losses or scoring logic). On a loaded host wall-clock ratios say
little: `matmul_peak_fraction_cpu_time` is the same ratio in CPU seconds of this process, and
`cores_busy_all_devices` the cores the fit kept busy (CPU seconds over wall seconds). The last
line says the load average at the start and the end. `--loop-probes N` adds the old comparison,
vmapped against N probes trained one at a time on one device. Then, per `--checkpoint-probes`
count, `checkpoints_spread_speedup`: the mlp1 probes of `--checkpoints` inputs trained together,
each device taking whole inputs, over one input a call with its probes spread (a scan's pass of
several checkpoints against one checkpoint at a time; each the best of 3 alternating runs), and
`scan_spreads_them`: whether a scan would (`jobs.spread_pays`).

The data imitate one pass of the issue-6 scan of a tiny-model collection: 180 probes (6 semantics x
5 offsets x 6 tasks), 64-dim states, 20,000 train samples (padded to 32,768 rows) and 1,024 val and
1,024 test, a 13 x 13 task in a 4-head, 26-logit layout; `kareljax scan`'s cpu profile (60 steps of
64, scored every 30).
"""
from __future__ import annotations

from kareljax import platform

platform.configure()   # one XLA CPU device per core, as the command line does

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from kareljax.probe import fit, jobs, models, scan  # noqa: E402

OPTIONS = fit.FitOptions(steps=60, batch_size=64, eval_every=30)
D, ROWS, COUNTS, OUTPUTS = 64, (32768, 1024, 1024), (20000, 1024, 1024), 26


def _inputs(probes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(n, D)).astype(np.float32) for n in ROWS]
    layout = models.HeadLayout.of((13, 13), 4, OUTPUTS)
    ys = []
    for x in xs:
        y = rng.integers(0, 13, (probes, len(x), 4)).astype(np.int32)
        y[..., 2:] = -1
        ys.append(y)
    stack = lambda a: np.broadcast_to(a, (probes,) + a.shape).copy()  # noqa: E731
    key_data = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(0), probes)))
    return key_data, xs, ys, [stack(layout.mask), stack(layout.offset), stack(layout.valid)]


def fit_flops(probes: int, widths: tuple[int, ...], options: fit.FitOptions,
              eval_rows: int) -> float:
    """The matmul FLOPs of one fit: per step and probe, forward (2 B w), weight gradients (2 B w)
    and input gradients of every layer but the first (its input is data); per scoring, a forward
    pass over `eval_rows` rows (val, test and the train subset)."""
    w = [a * b for a, b in zip(widths[:-1], widths[1:])]
    step = 2 * options.batch_size * (2 * sum(w) + sum(w[1:]))
    scoring = 2 * eval_rows * sum(w)
    return probes * (options.steps * step + options.steps // options.eval_every * scoring)


def _timed(f) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of a call after a first (compiling) one."""
    jax.block_until_ready(f())
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(f())
    return time.perf_counter() - wall, time.process_time() - cpu


@contextlib.contextmanager
def _one_core():
    """Every thread of this process (and those it starts meanwhile) on the first allowed core:
    one XLA CPU device runs its YNNPACK matmuls on a thread pool of every core, so only a pinned
    run is one core's work."""
    allowed = os.sched_getaffinity(0)
    first = {min(allowed)}

    def pin(cores):
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):      # a thread that has ended since
                os.sched_setaffinity(int(task), cores)

    pin(first)
    try:
        yield
    finally:
        pin(allowed)


def _run_fit(mesh, depth, block, data):
    key_data, xs, ys, layout = data
    args = [fit.place(mesh, a, True) for a in (key_data, *ys, *layout)]
    shared = [fit.place(mesh, a, False) for a in
              (np.asarray(jax.random.key_data(jax.random.key(1))), *xs, np.array(COUNTS, np.int32))]
    call = lambda: fit.fit_sharded(  # noqa: E731
        args[0], shared[0], *args[1:4], *args[4:7], *shared[1:4], shared[4], mesh=mesh,
        block=block, hidden=models.DEPTHS[depth], num_outputs=OUTPUTS, options=OPTIONS)
    return _timed(call)


def matmul_skeleton(mesh, probes: int, widths: tuple[int, ...], block: int,
                    options: fit.FitOptions, rows: tuple[int, ...]):
    """A function running the fit's einsums alone, as its loops run them: per device its probes
    in blocks, per block `steps` steps of forward, weight-gradient and input-gradient einsums on a
    gathered minibatch, and a forward pass over every scored split every `eval_every` steps.
    Weights start at zero (CPU matmuls take as long on any values; zeros neither overflow nor
    turn denormal), each result feeds the next einsum or the next step's weights, and the
    minibatch changes every step, so nothing is hoisted or dropped."""
    per_device = probes // mesh.size
    pairs = list(zip(widths[:-1], widths[1:]))
    batch = options.batch_size

    def block_fn(weights, x_train, x_evals, key):
        def step(ws, t):
            idx = jax.random.randint(jax.random.fold_in(key, t), (batch,), 0, x_train.shape[0])
            xb = x_train[idx]
            acts = [jnp.einsum("bd,pdh->pbh", xb, ws[0])]
            for w in ws[1:]:
                acts.append(jnp.einsum("pbi,pio->pbo", acts[-1], w))
            g, grads = acts[-1], []
            for i in range(len(ws) - 1, 0, -1):
                grads.append(jnp.einsum("pbi,pbo->pio", acts[i - 1], g))
                g = jnp.einsum("pbo,pio->pbi", g, ws[i])
            grads.append(jnp.einsum("bd,pbh->pdh", xb, g))
            return tuple(grads[::-1]), None

        def round_(carry, r):
            ws, total = carry
            ws, _ = jax.lax.scan(step, ws, r * options.eval_every + jnp.arange(options.eval_every))
            for x in x_evals:
                z = jnp.einsum("bd,pdh->pbh", x, ws[0])
                for w in ws[1:]:
                    z = jnp.einsum("pbi,pio->pbo", z, w)
                total = total + z[:, :1, :1].sum()
            return (ws, total), None

        (_, total), _ = jax.lax.scan(round_, (weights, jnp.zeros(())),
                                     jnp.arange(options.steps // options.eval_every))
        return total

    def per_device_fn(x_train, x_val, x_test, key_data, *weights):
        key = jax.random.wrap_key_data(key_data)
        x_evals = (x_train[:x_val.shape[0]], x_val, x_test)
        weights = tuple(w.reshape((per_device // block, block) + w.shape[1:]) for w in weights)
        return jax.lax.map(lambda ws: block_fn(ws, x_train, x_evals, key), weights).sum()[None]

    xs = [fit.place(mesh, np.random.default_rng(0).normal(size=(n, widths[0])).astype(np.float32),
                    False) for n in rows]
    key = fit.place(mesh, np.asarray(jax.random.key_data(jax.random.key(1))), False)
    # Zeros the compiler cannot see (arguments, not constants), one weight array per layer.
    weights = [fit.place(mesh, np.zeros((probes, a, b), np.float32), True) for a, b in pairs]
    cpu = mesh.devices.flat[0].platform == "cpu"     # compiled as the fit is
    compiled = jax.jit(jax.shard_map(per_device_fn, mesh=mesh,
                                     in_specs=(P(),) * 4 + (P(fit.PROBES),) * len(pairs),
                                     out_specs=P(fit.PROBES), check_vma=False),
                       compiler_options=fit.CPU_COMPILER_OPTIONS if cpu else None)
    return lambda: compiled(*xs, key, *weights)


def _loop_rows(depth, data, loop_probes):
    """The old comparison on one device: all probes vmapped against one probe at a time."""
    key_data, xs, ys, layout = data
    keys = jax.random.wrap_key_data(key_data)

    def run(idx):
        out = fit.fit(keys[idx], jax.random.key(1), *(y[idx] for y in ys),
                      *(a[idx] for a in layout), *xs, np.array(COUNTS, np.int32),
                      hidden=models.DEPTHS[depth], num_outputs=OUTPUTS, options=OPTIONS)
        return jax.block_until_ready(out)

    vmap_s, _ = _timed(lambda: run(np.arange(len(key_data))))
    run(np.arange(1))
    start = time.perf_counter()
    for p in range(loop_probes):
        run(np.arange(p, p + 1))
    loop_s = (time.perf_counter() - start) / loop_probes
    return {"probes_per_s_vmap": round(len(key_data) / vmap_s, 2),
            "probes_per_s_loop": round(1 / loop_s, 2),
            "vmap_speedup": round(loop_s * len(key_data) / vmap_s, 1)}


def _checkpoint_rows(options, depth: str, probes: int, checkpoints: int) -> dict:
    """The probes of `checkpoints` inputs (say checkpoints) trained together, each device taking
    whole inputs (`jobs.train_jobs`, `fit.fit_sources`), against one input a call with its probes
    spread over the devices (`jobs.train_group`, as a scan of one checkpoint at a time)."""
    several = []
    for i in range(checkpoints):
        _, xs, ys, layout = _inputs(probes, seed=1 + i)
        stacked = dict(zip(("mask", "offset", "valid"), layout))
        several.append(jobs.Job(xs, COUNTS, ys, stacked, OUTPUTS, depth, 0, 0))
    pays = jobs.spread_pays(options, several[0], fit.probe_mesh())
    default_padding, jobs.CPU_SPREAD_PADDING = jobs.CPU_SPREAD_PADDING, 0.0   # spread: always
    together = lambda: jobs.train_jobs(several, options)  # noqa: E731
    alone = lambda: [jobs.train_jobs([job], options) for job in several]  # noqa: E731
    try:
        together(), alone()                                # compile both
        times = {together: [], alone: []}
        for _ in range(3):                                 # alternating: drift hits both alike
            for f in (together, alone):
                start = time.perf_counter()
                f()
                times[f].append(time.perf_counter() - start)
    finally:
        jobs.CPU_SPREAD_PADDING = default_padding
    together_s, alone_s = min(times[together]), min(times[alone])
    total = probes * checkpoints
    return {"depth": depth, "checkpoints": checkpoints, "probes_per_checkpoint": probes,
            "probes_per_s_checkpoints_spread": round(total / together_s, 2),
            "probes_per_s_one_checkpoint_a_call": round(total / alone_s, 2),
            "checkpoints_spread_speedup": round(alone_s / together_s, 2),
            "scan_spreads_them": pays}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=180)
    parser.add_argument("--depths", default=",".join(models.DEPTHS))
    parser.add_argument("--memory-gib", type=float, default=scan.ScanOptions().memory_gib)
    parser.add_argument("--loop-probes", type=int, default=0)
    parser.add_argument("--checkpoints", type=int, default=4,
                        help="inputs of the checkpoints-spread lines (0: none)")
    parser.add_argument("--checkpoint-probes", default="180,6",
                        help="probes per input of the checkpoints-spread lines")
    args = parser.parse_args()
    load_start = [round(x, 2) for x in os.getloadavg()]
    every, one = fit.probe_mesh(), fit.probe_mesh(tuple(jax.devices()[:1]))
    depths = args.depths.split(",")
    totals = dict.fromkeys(("all_s", "one_s", "core_s", "skeleton_s", "all_cpu",
                            "skeleton_cpu", "flops"), 0.0)
    pin_cores = (every.devices.flat[0].platform == "cpu" and hasattr(os, "sched_setaffinity")
                 and os.path.isdir("/proc/self/task"))
    common = {"devices": every.size, "one_device_unit": "one core" if pin_cores else "one device",
              "cpu_count": os.cpu_count(), "steps": OPTIONS.steps,
              "batch_size": OPTIONS.batch_size, "platform": every.devices.flat[0].platform}
    options = scan.ScanOptions(memory_gib=args.memory_gib, fit=OPTIONS)
    for depth in depths:
        widths = (D,) + models.DEPTHS[depth] + (OUTPUTS,)
        label_bytes = 4 * 4 * sum(ROWS)                   # 4 heads per row, int32
        chunk, block = jobs.chunking(options, args.probes, widths, every, ROWS[1], label_bytes)
        all_s, all_cpu = _run_fit(every, depth, block, _inputs(chunk))
        one_chunk, one_block = jobs.chunking(options, args.probes, widths, one, ROWS[1],
                                             label_bytes)
        one_s, _ = _run_fit(one, depth, one_block, _inputs(one_chunk))
        core_s = one_s                     # GPU, TPU: a device is its own unit
        if pin_cores:
            with _one_core():
                core_s, _ = _run_fit(one, depth, one_block, _inputs(one_chunk))
        skeleton_s, skeleton_cpu = _timed(matmul_skeleton(every, chunk, widths, block, OPTIONS,
                                                          ROWS))
        flops = fit_flops(chunk, widths, OPTIONS, 3 * ROWS[1])
        row = {"depth": depth, "probes": args.probes, "padded_probes": chunk, "block": block,
               "probes_per_s_all_devices": round(chunk / all_s, 2),
               "probes_per_s_one_device": round(one_chunk / one_s, 2),
               "probes_per_s_one_core": round(one_chunk / core_s, 2),
               "devices_speedup": round(core_s / one_chunk * chunk / all_s, 2),
               "devices_speedup_vs_unpinned_device": round(one_s / one_chunk * chunk / all_s, 2),
               "fit_gflop_per_s": round(flops / all_s / 1e9, 1),
               "matmul_peak_gflop_per_s": round(flops / skeleton_s / 1e9, 1),
               "matmul_peak_fraction": round(skeleton_s / all_s, 3),
               "matmul_peak_fraction_cpu_time": round(skeleton_cpu / all_cpu, 3),
               "cores_busy_all_devices": round(all_cpu / all_s, 2), **common}
        if args.loop_probes:
            row.update(_loop_rows(depth, _inputs(args.probes), args.loop_probes))
        print(json.dumps(row), flush=True)
        for name, value, count in (("all_s", all_s, chunk), ("one_s", one_s, one_chunk),
                                   ("core_s", core_s, one_chunk),
                                   ("skeleton_s", skeleton_s, chunk), ("all_cpu", all_cpu, chunk),
                                   ("skeleton_cpu", skeleton_cpu, chunk), ("flops", flops, chunk)):
            totals[name] += value / count          # per probe: the depths weigh alike
    print(json.dumps({
        "depth": "all three" if len(depths) == 3 else args.depths,
        "probes": args.probes * len(depths),
        "probes_per_s_all_devices": round(len(depths) / totals["all_s"], 2),
        "probes_per_s_one_device": round(len(depths) / totals["one_s"], 2),
        "probes_per_s_one_core": round(len(depths) / totals["core_s"], 2),
        "devices_speedup": round(totals["core_s"] / totals["all_s"], 2),
        "devices_speedup_vs_unpinned_device": round(totals["one_s"] / totals["all_s"], 2),
        "fit_gflop_per_s": round(totals["flops"] / totals["all_s"] / 1e9, 1),
        "matmul_peak_gflop_per_s": round(totals["flops"] / totals["skeleton_s"] / 1e9, 1),
        "matmul_peak_fraction": round(totals["skeleton_s"] / totals["all_s"], 3),
        "matmul_peak_fraction_cpu_time": round(totals["skeleton_cpu"] / totals["all_cpu"], 3),
        "load_average_start": load_start,
        "load_average_end": [round(x, 2) for x in os.getloadavg()], **common}), flush=True)
    if args.checkpoints:
        for probes in map(int, args.checkpoint_probes.split(",")):
            print(json.dumps({**_checkpoint_rows(options, "mlp1", probes, args.checkpoints),
                              **common}), flush=True)


if __name__ == "__main__":
    main()
