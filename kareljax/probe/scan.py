"""The probe scan (docs/spec.md §9): every (checkpoint x semantics x offset x depth x task x seed) probe,
trained with `fit` in as few compiled passes as memory allows.

The branch task (datasets with conditionals) has its own samples and inputs and trains in calls
of its own (`labels.branch_samples`).

Per checkpoint, the samples (`labels.aligned`, the same set for every offset and semantics) give
one input matrix per split; every probe of one depth and seed shares it, so they train in one
`fit.fit_sharded` call spread over every device (`fit.probe_mesh`; split into several calls when a
device's share would exceed its part of `memory_gib`, `chunking`). Sample arrays are padded to
fixed sizes (`counts` says how many rows are real), so all checkpoints reuse one compilation per
depth. With several processes (jax.distributed) every process runs the same scan, one program over
all their devices, and process 0 writes the files (`primary`, `process_zero_decides`).

Results: one row per probe with its full key, its val and test accuracy, and `majority_acc`, the
test accuracy of always answering the most frequent train label (the chance level, which differs
between tasks and between semantics).
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Callable

import jax
import numpy as np

from kareljax.probe import fit, labels, models, store

DEPTH_NAMES = tuple(models.DEPTHS)
SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class ScanOptions:
    depths: tuple[str, ...] = DEPTH_NAMES
    tasks: tuple[str, ...] = labels.PAPER_TASK_NAMES  # + labels.EGO_TASK_NAMES on request
    offsets: tuple[int, ...] = labels.OFFSETS
    seeds: int = 3
    alts: tuple[int, ...] | None = None        # None: every alternative that was collected
    example: int = 0                           # labels from this shown example; -1: an output each
    correct_only: bool = False
    statements: tuple[int, ...] = ()           # (first, stop): only those statements' tokens
    max_train_samples: int = 100_000
    max_eval_samples: int = 10_000             # per split (val, test)
    memory_gib: float = 4.0
    fit: fit.FitOptions = fit.FitOptions()

    def __post_init__(self):
        bad = [d for d in self.depths if d not in models.DEPTHS]
        if bad:
            raise ValueError(f"depths: unknown {bad}; choose from {DEPTH_NAMES}")
        unknown = [t for t in self.tasks if t not in labels.TASK_NAMES]
        if unknown:
            raise ValueError(f"tasks: unknown {unknown}; choose from {labels.TASK_NAMES}")
        if self.seeds < 1:
            raise ValueError(f"seeds: must be >= 1, got {self.seeds}")
        if self.example < labels.ALL_EXAMPLES:
            raise ValueError(f"example: {self.example} is neither a shown example (0, 1, ...) nor "
                             f"{labels.ALL_EXAMPLES} (all of them)")
        if self.statements and not (len(self.statements) == 2
                                    and 0 <= self.statements[0] < self.statements[1]):
            raise ValueError(f"statements: {self.statements} is not a range (first, stop) with "
                             "0 <= first < stop, e.g. (0, 1) for the first action only")


class NoSamplesError(ValueError):
    """A collection with no aligned probe samples in some split (e.g. one-action programs)."""


def bucket(n: int) -> int:
    """Rows a split of n samples is padded to: a power of two, at least 1,024 (few shapes, so
    few compilations)."""
    return max(1024, 1 << (max(n, 1) - 1).bit_length())


def _kept(m: int, limit: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subsample of at most `limit` of m samples."""
    if m <= limit:
        return np.arange(m)
    return np.sort(np.random.default_rng(seed).choice(m, limit, replace=False))


def _subsample(samples: dict, limit: int, seed: int) -> dict:
    """At most `limit` of a sample dict's samples (`labels.aligned`, `labels.branch_samples`);
    "available" keeps how many there were."""
    keep = _kept(len(samples["spec"]), limit, seed)
    return {**labels.take(samples, keep), "available": len(samples["spec"])}


def _sample_counts(used: tuple[int, ...], available: tuple[int, ...]) -> dict:
    """A result row's sample counts: used by the probes and found before the split's limit."""
    return {**{f"{s}_samples": n for s, n in zip(SPLITS, used)},
            **{f"{s}_available": n for s, n in zip(SPLITS, available)}}


def _split_samples(collection: dict, options: ScanOptions, limit: int, rows: np.ndarray,
                   height: int, width: int) -> tuple[dict, dict]:
    """(samples, labels {task: [O, M, S', heads]}) of one split: they depend on the programs
    and traces only, so every layer view of a per-layer collection shares them."""
    if options.example == labels.ALL_EXAMPLES:   # one sample per state, a label per example
        samples = labels.aligned_every_example(collection, options.offsets,
                                               options.correct_only, options.statements)
        samples = _subsample(samples, limit, seed=0)
        y = labels.labels_every_example(collection, samples, height, width)  # [O, M, S, E*heads]
        return samples, {task: values[:, :, rows] for task, values in y.items()}
    samples = labels.aligned(collection, options.offsets, options.example,
                             correct_only=options.correct_only,
                             statements=options.statements)
    samples = _subsample(samples, limit, seed=0)
    y = labels.labels(collection, samples, height, width)                # [O, M, S, heads]
    return samples, {task: values[:, :, rows] for task, values in y.items()}


def _pad_rows(a: np.ndarray, size: int, axis: int) -> np.ndarray:
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, size - a.shape[axis])
    return np.pad(a, pad)


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
        block = BLOCK_BYTES // (16 * param_floats + 4 * min(eval_rows, 4096) * sum(widths[1:]))
        block = max(1, min(block, per_device, int(budget // per_probe)))
        most = max(block, int((budget - block * per_probe) // label_bytes) if label_bytes
                   else per_device)
    else:
        most = block = max(1, int(budget // (per_probe + label_bytes)))
    per_call = -(-per_device // -(-per_device // most))
    blocks = -(-per_call // block)
    block = -(-per_call // blocks)
    return mesh.size * blocks * block, block


def _train_group(xs, counts, ys, stacked, num_outputs: int, options: ScanOptions, depth: str,
                 seed: int, salt: int, progress, mesh=None) -> list[dict]:
    """Trains P probes (labels ys [P, rows, heads] per split, head layouts `stacked`) on shared
    inputs xs, spread over `mesh` (default: `fit.probe_mesh()`, every device); returns per probe
    {val_acc, test_acc, best_step, train_acc, train_acc_rise}."""
    mesh = fit.probe_mesh() if mesh is None else mesh
    hidden = models.DEPTHS[depth]
    num = len(ys[0])
    chunk, block = chunking(options, num, (xs[0].shape[1],) + hidden + (num_outputs,), mesh,
                            xs[1].shape[0], sum(y[0].nbytes for y in ys))
    base = jax.random.fold_in(jax.random.key(seed), DEPTH_NAMES.index(depth))
    base = jax.random.fold_in(base, salt) if salt else base
    data_key = jax.random.fold_in(jax.random.key(1000 + seed), salt)
    shared = [fit.place(mesh, a, per_probe=False)
              for a in (jax.random.key_data(data_key), *xs, np.array(counts, np.int32))]
    fields = ("mask", "offset", "valid") + (("group",) if "group" in stacked else ())
    out_rows = []
    for start in range(0, num, chunk):
        idx = np.arange(start, start + chunk) % num   # the last call wraps round
        # One key per probe, from its index: a probe's result depends neither on `memory_gib`
        # nor on the devices, nor on the repeated probes that pad the call.
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(base, idx)
        split = [fit.place(mesh, a, per_probe=True)
                 for a in (jax.random.key_data(keys), *(y[idx] for y in ys),
                           *(stacked[f][idx] for f in fields))]
        out = fit.fit_sharded(split[0], shared[0], *split[1:7], *shared[1:4], shared[4],
                              split[7] if len(split) > 7 else None, mesh=mesh, block=block,
                              hidden=hidden, num_outputs=num_outputs, options=options.fit)
        out = jax.tree.map(np.asarray, out)
        taken = min(chunk, num - start)
        out_rows += [{"val_acc": float(out["val_acc"][j]), "test_acc": float(out["test_acc"][j]),
                      "best_step": int(out["best_step"][j]),
                      "train_acc": float(out["train_acc"][j]),
                      "train_acc_rise": float(out["train_acc_rise"][j])} for j in range(taken)]
        if progress:
            progress(taken)
    return out_rows


def primary() -> bool:
    """Whether this process writes a scan's files: process 0 (every process scans every probe,
    `fit.fit_sharded` being one program over the devices of all of them)."""
    return jax.process_index() == 0


def process_zero_decides(flag: bool) -> bool:
    """Process 0's `flag` on every process (e.g. whether a checkpoint's rows are cached, when only
    process 0 may see the cache): all of them then make the same fit calls."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils
    return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def majority_accuracy(y_train: np.ndarray, y_test: np.ndarray, outputs: int = 1) -> float:
    """Test accuracy of always answering the train split's most frequent label (all heads
    together, as a probe is scored): the chance level a probe must beat. With several `outputs`
    (the heads in `outputs` equal blocks), the mean of each output's."""
    if not len(y_train) or not len(y_test):
        return float("nan")
    if outputs > 1:
        width = y_train.shape[1] // outputs
        return float(np.mean([majority_accuracy(y_train[:, o * width:(o + 1) * width],
                                                y_test[:, o * width:(o + 1) * width])
                              for o in range(outputs)]))
    values, counts = np.unique(y_train, axis=0, return_counts=True)
    return float((y_test == values[counts.argmax()]).all(-1).mean())


def _inputs(splits: dict) -> tuple[list[np.ndarray], tuple[int, ...], list[int]]:
    """(z-scored inputs padded to fixed row counts, real row counts, padded sizes) of
    {split: x [M, d]}."""
    counts = tuple(len(splits[s]) for s in SPLITS)
    sizes = [bucket(n) for n in counts]
    xs = fit.zscore(*(splits[s] for s in SPLITS))
    return [_pad_rows(x, size, 0) for x, size in zip(xs, sizes)], counts, sizes


def _branch_samples(collections: dict, options: ScanOptions, limits: dict) -> dict:
    """Each split's branch-task samples (conditional statements and their labels), subsampled to
    its limit; computed once per checkpoint and shared by every layer view."""
    samples = {}
    for split, collected in collections.items():
        found = labels.branch_samples(collected, options.example, options.correct_only,
                                      options.statements)
        samples[split] = _subsample(found, limits[split], seed=0)
    return samples


def _branch_rows(collections: dict, samples: dict, options: ScanOptions, rows_sel, semantics,
                 alts, step: int, progress) -> list[dict]:
    """The branch task's probes (offset 0, one per semantics, depth and seed) on `samples`
    (`_branch_samples`); [] when the collection has no conditional statements or some split has
    no sample."""
    if min(len(v["spec"]) for v in samples.values()) == 0:
        return []
    xs, counts, sizes = _inputs({s: collections[s]["states"][v["spec"], v["token"]]
                                 .astype(np.float32) for s, v in samples.items()})
    ys = []
    for split, size in zip(SPLITS, sizes):
        label = samples[split]["label"][:, rows_sel]                       # [M, S', 1]
        ys.append(_pad_rows(np.moveaxis(label, 1, 0), size, 1))            # [S', rows, 1]
    majority = [majority_accuracy(ys[0][s, :counts[0]], ys[2][s, :counts[2]])
                for s in range(len(semantics))]
    count_fields = _sample_counts(counts, tuple(samples[s]["available"] for s in SPLITS))
    layout = models.HeadLayout.of(labels.BRANCH.heads, 1, 2)
    stacked = {f: np.stack([getattr(layout, f)] * len(semantics))
               for f in ("mask", "offset", "valid")}
    rows = []
    for depth in options.depths:
        for seed in range(options.seeds):
            fitted = _train_group(xs, counts, ys, stacked, 2, options, depth, seed, 1, progress)
            for s, result in enumerate(fitted):
                rows.append({"step": step, "semantics": semantics[s],
                             "alt": -1 if s == 0 else alts[s - 1], "offset": 0, "depth": depth,
                             "task": labels.BRANCH.name, "seed": seed, **result,
                             "majority_acc": majority[s], **count_fields})
    return rows


def scan_step(directory: str, options: ScanOptions, progress: Callable[[int], None] | None = None
              ) -> list[dict]:
    """Trains every probe of one collected checkpoint; returns the result rows."""
    index = store.read_index(directory)
    height, width = index["layout"]["height"], index["layout"]["width"]
    collected_alts = list(index["alts"])
    alts = collected_alts if options.alts is None else list(options.alts)
    missing = [a for a in alts if a not in collected_alts]
    if missing:
        raise ValueError(f"alternatives {missing} were not collected (have {collected_alts})")
    rows_sel = np.array([0] + [1 + collected_alts.index(a) for a in alts])
    semantics = ["original"] + [f"alt{a}" for a in alts]
    task_list = [t for t in labels.tasks(height, width) if t.name in options.tasks]
    limits = {"train": options.max_train_samples, "val": options.max_eval_samples,
              "test": options.max_eval_samples}
    collections = {split: store.read_split(directory, split) for split in limits}

    prepared = {split: _split_samples(collected, options, limits[split], rows_sel, height, width)
                for split, collected in collections.items()} if task_list else {}
    branch = (_branch_samples(collections, options, limits)
              if labels.BRANCH.name in options.tasks else None)
    results = []
    for layer, views in layer_views(collections):
        rows = []
        if task_list:
            rows += _state_rows(views, prepared, options, task_list, semantics, alts,
                                index["step"], directory, progress)
        if branch is not None:
            rows += _branch_rows(views, branch, options, rows_sel, semantics, alts,
                                 index["step"], progress)
        results += rows if layer is None else [{**row, "layer": layer} for row in rows]
    # Options away from their defaults are recorded in every row.
    recorded = {**({"statements": list(options.statements)} if options.statements else {}),
                **({"example": options.example} if options.example else {})}
    return [{**row, **recorded} for row in results]


def layer_views(collections: dict[str, dict]) -> list[tuple[int | None, dict[str, dict]]]:
    """(layer, collections) to probe: the mean over layers (layer None) and, for a per-layer
    collection (states [N, layers, P, d], `collect --per-layer`), each layer on its own (0 = the
    embedding output, then blocks 1 .. n-1, last block n after the final norm)."""
    states = collections["train"]["states"]
    if states.ndim == 3:
        return [(None, collections)]
    if states.shape[0] != len(collections["train"]["program"]):
        raise ValueError(f"per-layer states of shape {states.shape} are not specs first (a "
                         "collection written before the [specs, layers, P, d] layout): collect "
                         "again with `kareljax collect --per-layer --overwrite`")

    def view(select):
        return {split: {**c, "states": select(c["states"])} for split, c in collections.items()}

    return [(None, view(lambda s: s.mean(1, dtype=np.float32)))] + [
        (layer, view(lambda s, layer=layer: s[:, layer])) for layer in range(states.shape[1])]


def _state_rows(collections, prepared, options, task_list, semantics, alts, step, directory,
                progress) -> list[dict]:
    """The state tasks' probes: (offset x semantics x task) for every depth and seed, on the
    states of `collections` at the samples of `prepared` ({split: (samples, labels)})."""
    split_data = {split: (collections[split]["states"][samples["spec"], samples["token"]]
                          .astype(np.float32), y)
                  for split, (samples, y) in prepared.items()}
    counts = tuple(len(split_data[s][0]) for s in SPLITS)
    if min(counts) == 0:
        raise NoSamplesError(f"{directory}: no probe samples in some split (train, val, test = "
                             f"{counts}); the programs may be too short for the offsets"
                             + (f" or the statements {options.statements}"
                                if options.statements else ""))
    xs, counts, sizes = _inputs({s: split_data[s][0] for s in split_data})
    # Labels from every shown example: one output (the task's heads) per example.
    outputs = (labels.shown_examples(collections["train"])
               if options.example == labels.ALL_EXAMPLES else 1)
    num_heads = outputs * max(len(t.heads) for t in task_list)
    num_outputs = outputs * max(sum(t.heads) for t in task_list)

    # Probe list: (offset, semantics, task) for each seed.
    keys_of = list(itertools.product(range(len(options.offsets)), range(len(semantics)),
                                     range(len(task_list))))
    layouts = [models.HeadLayout.of(t.heads, num_heads, num_outputs, outputs) for t in task_list]

    def labels_for(split, size):
        y = split_data[split][1]
        out = np.full((len(keys_of), size, num_heads), -1, np.int32)
        for p, (o, s, t) in enumerate(keys_of):
            values = y[task_list[t].name][o, :, s]                  # [M, heads]
            out[p, :len(values), :values.shape[1]] = values
        return out

    ys = [labels_for(s, size) for s, size in zip(SPLITS, sizes)]
    fields = ("mask", "offset", "valid") + (("group",) if outputs > 1 else ())
    stacked = {f: np.stack([getattr(layouts[t], f) for _, _, t in keys_of]) for f in fields}
    width = [outputs * len(task_list[t].heads) for _, _, t in keys_of]
    majority = [majority_accuracy(ys[0][p, :counts[0], :width[p]], ys[2][p, :counts[2], :width[p]],
                                  outputs)
                for p in range(len(keys_of))]
    count_fields = _sample_counts(counts, tuple(prepared[s][0]["available"] for s in SPLITS))
    results = []
    for depth in options.depths:
        for seed in range(options.seeds):
            fitted = _train_group(xs, counts, ys, stacked, num_outputs, options, depth, seed, 0,
                                  progress)
            for p, ((o, s, t), result) in enumerate(zip(keys_of, fitted)):
                results.append({
                    "step": step, "semantics": semantics[s],
                    "alt": -1 if s == 0 else alts[s - 1], "offset": options.offsets[o],
                    "depth": depth, "task": task_list[t].name, "seed": seed, **result,
                    "majority_acc": majority[p], **count_fields})
    return results


def probes_per_step(options: ScanOptions, num_semantics: int, conditions: bool = False,
                    layers: int = 0) -> int:
    """Probes trained per checkpoint (the branch task only where programs have conditionals;
    a per-layer collection of `layers` layers adds each layer's probes to the mean's)."""
    state_tasks = len([t for t in options.tasks if t != labels.BRANCH.name])
    branch = int(conditions and labels.BRANCH.name in options.tasks)
    return (1 + layers) * (len(options.depths) * options.seeds * num_semantics
                           * (len(options.offsets) * state_tasks + branch))
