"""Training groups of probes over the devices of a mesh: how many probes a call and a block take
(`chunking`, from the memory budget), a `Job` (probes sharing one input at one depth and seed) and
`train_jobs`, which spreads jobs' probes over the devices (`fit.fit_sharded`) or, for several
inputs of one shape, whole inputs over the devices (`fit.fit_sources`). A probe's key comes from
its depth, seed, salt and index, so its result depends on nothing else: not the memory budget, the
devices, the blocks or the inputs beside it.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import jax
import numpy as np

from kareljax.probe import fit, models

if TYPE_CHECKING:
    from kareljax.probe.scan import ScanOptions

DEPTH_NAMES = tuple(models.DEPTHS)
SPLITS = ("train", "val", "test")


def _per_probe_bytes(options: ScanOptions, widths: tuple[int, ...]) -> tuple[int, int]:
    """(parameter floats of one probe, bytes one probe needs in a `fit` call: parameters,
    gradients and AdamW moments, a minibatch's activations and scoring's)."""
    param_floats = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    return param_floats, 4 * (4 * param_floats + 3 * options.fit.batch_size * sum(widths)
                              + 4096 * sum(widths))


def chunk_size(options: ScanOptions, num_probes: int, widths: tuple[int, ...]) -> int:
    """Probes per `fit` call on one device: as many as `memory_gib` holds, in even chunks (one
    shape)."""
    chunk = max(1, min(num_probes, int(options.memory_gib * 2 ** 30
                                       // _per_probe_bytes(options, widths)[1])))
    return -(-num_probes // -(-num_probes // chunk))


# A block's parameters, gradients and AdamW moments and its scoring activations (one split's):
# about what a CPU core's share of the cache holds, so a block trains without going to main
# memory for them. On a 2-core EPYC (2 MiB L2 per core, 32 MiB L3; 64-dim inputs, CPU time on a
# loaded host) blocks of 2 mlp2 probes took 1.2-1.4x less time than blocks of 6 or 16 and
# 1.4-1.6x less than single probes (whose steps are too small for the per-operation costs);
# blocks of 6-15 mlp1 probes 1.4x less than blocks of 45 or 90.
BLOCK_BYTES = 24 * 2 ** 20


def _cpu_block(param_floats: int, widths: tuple[int, ...], eval_rows: int, most: int,
               fit_in_budget: float) -> int:
    """Probes per block on a CPU device: what BLOCK_BYTES holds, at most `most` and what the
    device's budget holds (at least 1)."""
    block = BLOCK_BYTES // (16 * param_floats + 4 * min(eval_rows, 4096) * sum(widths[1:]))
    return max(1, min(block, most, int(fit_in_budget)))


def chunking(options: ScanOptions, num_probes: int, widths: tuple[int, ...], mesh,
             eval_rows: int = 1024, label_bytes: int = 0) -> tuple[int, int]:
    """(probes per `fit.fit_sharded` call, probes per block) for probes of `widths` scored on
    `eval_rows` rows, with `label_bytes` of labels each. On CPU a device trains its probes in
    even blocks of at most BLOCK_BYTES (parameters, optimizer state, scoring activations), one
    block at a time, so its share of `memory_gib` (`fit.per_device_memory`) holds one block's
    training and every probe's labels; elsewhere all of a device's probes train together. Calls
    are even; a call's probe count is a multiple of the mesh size and of the block, and may exceed
    `num_probes` (the scan pads with repeated probes and drops their results)."""
    param_floats, per_probe = _per_probe_bytes(options, widths)
    budget = fit.per_device_memory(mesh, options.memory_gib)
    per_device = -(-num_probes // mesh.size)
    if mesh.devices.flat[0].platform == "cpu":
        block = _cpu_block(param_floats, widths, eval_rows, per_device, budget // per_probe)
        most = max(block, int((budget - block * per_probe) // label_bytes) if label_bytes
                   else per_device)
    else:
        most = block = max(1, int(budget // (per_probe + label_bytes)))
    per_call = -(-per_device // -(-per_device // most))
    blocks = -(-per_call // block)
    block = -(-per_call // blocks)
    return mesh.size * blocks * block, block


def _probe_keys(depth: str, seed: int, salt: int, idx: np.ndarray) -> np.ndarray:
    """The key data of probes `idx` (indices within their job): a probe's key depends on its
    depth, seed, salt and index only, not on `memory_gib`, the devices, the repeated probes that
    pad a call or the inputs beside it."""
    base = jax.random.fold_in(jax.random.key(seed), DEPTH_NAMES.index(depth))
    base = jax.random.fold_in(base, salt) if salt else base
    return np.asarray(jax.random.key_data(
        jax.vmap(jax.random.fold_in, in_axes=(None, 0))(base, idx)))


def _data_key(seed: int, salt: int) -> np.ndarray:
    """The key data ordering the minibatches of a seed's probes (shared by all of them)."""
    return np.asarray(jax.random.key_data(jax.random.fold_in(jax.random.key(1000 + seed), salt)))


def _result_rows(out: dict, count: int) -> list[dict]:
    """The first `count` probes' results of a fit call's output (fields [probes])."""
    return [{"val_acc": float(out["val_acc"][j]), "test_acc": float(out["test_acc"][j]),
             "best_step": int(out["best_step"][j]), "train_acc": float(out["train_acc"][j]),
             "train_acc_rise": float(out["train_acc_rise"][j])} for j in range(count)]


def _layout_fields(stacked: dict) -> tuple[str, ...]:
    """The head layout fields a job's probes carry (`group` when they predict several labels)."""
    return ("mask", "offset", "valid") + (("group",) if "group" in stacked else ())


def train_group(xs, counts, ys, stacked, num_outputs: int, options: ScanOptions, depth: str,
                seed: int, salt: int, progress, mesh=None) -> list[dict]:
    """Trains P probes (labels ys [P, rows, heads] per split, head layouts `stacked`) on shared
    inputs xs, spread over `mesh` (default: `fit.probe_mesh()`, every device); returns per probe
    {val_acc, test_acc, best_step, train_acc, train_acc_rise}."""
    mesh = fit.probe_mesh() if mesh is None else mesh
    hidden = models.DEPTHS[depth]
    num = len(ys[0])
    chunk, block = chunking(options, num, (xs[0].shape[1],) + hidden + (num_outputs,), mesh,
                            xs[1].shape[0], sum(y[0].nbytes for y in ys))
    shared = [fit.place(mesh, a, per_probe=False)
              for a in (_data_key(seed, salt), *xs, np.array(counts, np.int32))]
    fields = _layout_fields(stacked)
    out_rows = []
    for start in range(0, num, chunk):
        idx = np.arange(start, start + chunk) % num   # the last call wraps round
        split = [fit.place(mesh, a, per_probe=True)
                 for a in (_probe_keys(depth, seed, salt, idx), *(y[idx] for y in ys),
                           *(stacked[f][idx] for f in fields))]
        out = fit.fit_sharded(split[0], shared[0], *split[1:7], *shared[1:4], shared[4],
                              split[7] if len(split) > 7 else None, mesh=mesh, block=block,
                              hidden=hidden, num_outputs=num_outputs, options=options.fit)
        taken = min(chunk, num - start)
        out_rows += _result_rows(jax.tree.map(np.asarray, out), taken)
        if progress:
            progress(taken)
    return out_rows


@dataclasses.dataclass
class Job:
    """Probes that share one input (one layer view of one checkpoint) at one depth and seed:
    padded inputs per split [rows, d] with their real row `counts`, labels per split
    [P, rows, heads] and head layout fields [P, ...] (`train_group`'s arguments)."""
    xs: list
    counts: tuple
    ys: list
    stacked: dict
    num_outputs: int
    depth: str
    seed: int
    salt: int

    def signature(self) -> tuple:
        """Jobs of one signature can share a call: the same shapes, depth, seed and data key."""
        return (self.depth, self.seed, self.salt, self.num_outputs,
                tuple(x.shape for x in self.xs), tuple(y.shape for y in self.ys),
                tuple((k, v.shape) for k, v in sorted(self.stacked.items())))

    def widths(self) -> tuple[int, ...]:
        return (self.xs[0].shape[1],) + models.DEPTHS[self.depth] + (self.num_outputs,)


# On a CPU host a device trains its probes in cache-sized blocks whichever way they are spread,
# and whole inputs per device measured 0.85-0.94x one input a call when the latter pads nothing
# (benchmarks/probe_scan.py, 2 devices); it pays when one input a call pads its probes (more
# devices than its probes fill): 1.24-1.31x at 6 probes on 8 devices, padded to 8.
CPU_SPREAD_PADDING = 0.25


def spread_pays(options: ScanOptions, job: Job, mesh) -> bool:
    """Whether whole inputs per device beat one input a call for jobs like `job`: on GPU and TPU
    always (a device's share of one input's probes is little work for it, and the calls are
    fewer); on a CPU host when one input a call would pad its probes by CPU_SPREAD_PADDING or
    more."""
    if mesh.devices.flat[0].platform != "cpu":
        return True
    num = len(job.ys[0])
    chunk, _ = chunking(options, num, job.widths(), mesh, job.xs[1].shape[0],
                        sum(y[0].nbytes for y in job.ys))
    return chunk * -(-num // chunk) >= (1 + CPU_SPREAD_PADDING) * num


def sources_per_device(options: ScanOptions, job: Job, mesh) -> tuple[int, int]:
    """(inputs one device trains whole in a call, probes per block) for jobs like `job`: every
    probe of an input on one device, one block training at a time, each input with its labels
    held; (0, 0) when one device cannot hold a whole input's probes or the mesh is one device
    or it does not pay (`spread_pays`); then `train_group` spreads each input's probes over the
    devices."""
    if mesh.size == 1 or not spread_pays(options, job, mesh):
        return 0, 0
    num = len(job.ys[0])
    param_floats, per_probe = _per_probe_bytes(options, job.widths())
    budget = fit.per_device_memory(mesh, options.memory_gib)
    if mesh.devices.flat[0].platform == "cpu":
        block = _cpu_block(param_floats, job.widths(), job.xs[1].shape[0], num, budget // per_probe)
    else:
        block = num
    block = -(-num // -(-num // block))                   # even blocks
    padded = block * -(-num // block)
    held = sum(x.nbytes for x in job.xs) + padded * sum(y[0].nbytes for y in job.ys)
    most = int((budget - block * per_probe) // held)
    return (most, block) if most >= 1 else (0, 0)


def _train_sources(jobs: list[Job], options: ScanOptions, block: int, progress, mesh
                   ) -> list[list[dict]]:
    """Trains jobs of one signature in one `fit.fit_sources` call, each device taking whole
    inputs; a probe's key and minibatches are those `train_group` gives it."""
    first, num = jobs[0], len(jobs[0].ys[0])
    idx = np.arange(block * -(-num // block)) % num   # each input's probes, padded to blocks
    keys = _probe_keys(first.depth, first.seed, first.salt, idx)
    fields = _layout_fields(first.stacked)
    smesh = fit.source_mesh(mesh)
    per_probe = [np.stack([keys] * len(jobs))]
    per_probe += [np.stack([job.ys[s][idx] for job in jobs]) for s in range(len(SPLITS))]
    per_probe += [np.stack([job.stacked[f][idx] for job in jobs]) for f in fields]
    inputs = [np.stack([job.xs[s] for job in jobs]) for s in range(len(SPLITS))]
    inputs.append(np.array([job.counts for job in jobs], np.int32))
    spec = jax.sharding.PartitionSpec
    placed = [fit.place(smesh, a, spec(fit.SOURCES, fit.PROBES)) for a in per_probe]
    shared = [fit.place(smesh, a, spec(fit.SOURCES)) for a in inputs]
    data_key = fit.place(smesh, _data_key(first.seed, first.salt), spec())
    out = fit.fit_sources(placed[0], data_key, *placed[1:7],
                          *shared, placed[7] if len(placed) > 7 else None, mesh=smesh,
                          block=block, hidden=models.DEPTHS[first.depth],
                          num_outputs=first.num_outputs, options=options.fit)
    out = jax.tree.map(np.asarray, out)
    if progress:
        progress(num * len(jobs))
    return [_result_rows({k: v[g] for k, v in out.items()}, num) for g in range(len(jobs))]


def train_jobs(jobs: list[Job], options: ScanOptions, progress=None, mesh=None
               ) -> list[list[dict]]:
    """Every job's result rows (`train_group`'s), in order. Jobs of one signature (say one
    depth and seed of several checkpoints) are trained together, each device taking whole inputs,
    as many as its memory holds, in calls of equal shape, where that pays (`spread_pays`); the
    inputs left over (fewer than the devices), jobs whose probes do not fit one device and those
    for which it does not pay have their probes spread over the devices instead, one input a
    call."""
    mesh = fit.probe_mesh() if mesh is None else mesh
    results: list = [None] * len(jobs)
    groups: dict = {}
    for i, job in enumerate(jobs):
        groups.setdefault(job.signature(), []).append(i)
    for members in groups.values():
        most, block = sources_per_device(options, jobs[members[0]], mesh)
        whole = len(members) // mesh.size            # inputs per device if all went in one call
        calls = -(-whole // most) if most and whole else 0
        per_call = mesh.size * (whole // calls) if calls else 0
        for c in range(calls):
            chunk = members[c * per_call:(c + 1) * per_call]
            for i, rows in zip(chunk, _train_sources([jobs[i] for i in chunk], options, block,
                                                     progress, mesh)):
                results[i] = rows
        for i in members[calls * per_call:]:
            job = jobs[i]
            results[i] = train_group(job.xs, job.counts, job.ys, job.stacked, job.num_outputs,
                                      options, job.depth, job.seed, job.salt, progress, mesh)
    return results
