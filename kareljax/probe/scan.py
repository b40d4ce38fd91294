"""The probe scan (docs/spec.md §9): every (checkpoint x semantics x offset x depth x task x seed) probe,
trained with `fit` in as few compiled passes as memory allows.

The branch task (datasets with conditionals) has its own samples and inputs and trains in calls
of its own (`labels.branch_samples`).

Per checkpoint, the samples (`labels.aligned`, the same set for every offset and semantics) give
one input matrix per split and layer view; every probe of one depth and seed shares it: a
`jobs.Job` (`prepare_step`). Jobs of one shape, depth and seed from several inputs (the checkpoints
of a pass, the layers of a per-layer collection) train together where that pays (`jobs.train_jobs`,
`jobs.spread_pays`): each device takes whole inputs, as many as its part of `memory_gib` holds
(`fit.fit_sources`). The inputs left over, fewer than the devices, and jobs whose probes do not fit
one device spread their probes over every device instead (`fit.fit_sharded` over `fit.probe_mesh`;
several calls when a device's share would exceed its part of `memory_gib`, `jobs.chunking`). Either
way a probe's result depends only on its key and its input, not on the devices or the inputs beside
it. Sample arrays are padded to fixed sizes (`counts` says how many rows are real), so all
checkpoints reuse one compilation per depth and call shape. With several processes
(jax.distributed) every process runs the same scan, one program over all their devices, and process
0 writes the files (`primary`, `process_zero_decides`).

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
from kareljax.probe.jobs import Job, train_jobs

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


def _branch_jobs(collections: dict, samples: dict, options: ScanOptions, rows_sel, semantics,
                 alts, step: int) -> list[tuple[Job, Callable]]:
    """The branch task's probes (offset 0, one per semantics, depth and seed) on `samples`
    (`_branch_samples`), as (job, its results -> rows) pairs; [] when the collection has no
    conditional statements or some split has no sample."""
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

    def rows_of(depth, seed):
        return lambda fitted: [
            {"step": step, "semantics": semantics[s], "alt": -1 if s == 0 else alts[s - 1],
             "offset": 0, "depth": depth, "task": labels.BRANCH.name, "seed": seed, **result,
             "majority_acc": majority[s], **count_fields} for s, result in enumerate(fitted)]

    return [(Job(xs, counts, ys, stacked, 2, depth, seed, 1), rows_of(depth, seed))
            for depth in options.depths for seed in range(options.seeds)]


def prepare_step(directory: str, options: ScanOptions) -> list[tuple[Job, Callable]]:
    """Every probe job of one collected checkpoint, each with the function that turns its
    results into result rows (`train_steps` trains them)."""
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
    # Options away from their defaults are recorded in every row.
    recorded = {**({"statements": list(options.statements)} if options.statements else {}),
                **({"example": options.example} if options.example else {})}
    jobs = []
    for layer, views in layer_views(collections):
        pairs = []
        if task_list:
            pairs += _state_jobs(views, prepared, options, task_list, semantics, alts,
                                 index["step"], directory)
        if branch is not None:
            pairs += _branch_jobs(views, branch, options, rows_sel, semantics, alts,
                                  index["step"])
        extra = recorded if layer is None else {"layer": layer, **recorded}
        jobs += [(job, lambda fitted, rows_of=rows_of, extra=extra: [
                     {**row, **extra} for row in rows_of(fitted)]) for job, rows_of in pairs]
    return jobs


def held_bytes(prepared: list[tuple[Job, Callable]]) -> int:
    """Host memory a prepared checkpoint's inputs hold (arrays shared by jobs counted once)."""
    arrays = {id(a): a for job, _ in prepared for a in (*job.xs, *job.ys)}
    return sum(a.nbytes for a in arrays.values())


def train_steps(prepared: list[list[tuple[Job, Callable]]], options: ScanOptions,
                progress: Callable[[int], None] | None = None, mesh=None) -> list[list[dict]]:
    """The result rows of each prepared checkpoint (`prepare_step`), their probes trained
    together (`train_jobs`: several checkpoints' inputs spread over the devices)."""
    flat = [pair for pairs in prepared for pair in pairs]
    fitted = iter(train_jobs([job for job, _ in flat], options, progress, mesh))
    return [[row for _, rows_of in pairs for row in rows_of(next(fitted))]
            for pairs in prepared]


def scan_step(directory: str, options: ScanOptions, progress: Callable[[int], None] | None = None
              ) -> list[dict]:
    """Trains every probe of one collected checkpoint; returns the result rows."""
    return train_steps([prepare_step(directory, options)], options, progress)[0]


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


def _state_jobs(collections, prepared, options, task_list, semantics, alts, step, directory
                ) -> list[tuple[Job, Callable]]:
    """The state tasks' probes: (offset x semantics x task) for every depth and seed, on the
    states of `collections` at the samples of `prepared` ({split: (samples, labels)}), as
    (job, its results -> rows) pairs."""
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

    def rows_of(depth, seed):
        return lambda fitted: [
            {"step": step, "semantics": semantics[s], "alt": -1 if s == 0 else alts[s - 1],
             "offset": options.offsets[o], "depth": depth, "task": task_list[t].name,
             "seed": seed, **result, "majority_acc": majority[p], **count_fields}
            for p, ((o, s, t), result) in enumerate(zip(keys_of, fitted))]

    return [(Job(xs, counts, ys, stacked, num_outputs, depth, seed, 0), rows_of(depth, seed))
            for depth in options.depths for seed in range(options.seeds)]


def probes_per_step(options: ScanOptions, num_semantics: int, conditions: bool = False,
                    layers: int = 0) -> int:
    """Probes trained per checkpoint (the branch task only where programs have conditionals;
    a per-layer collection of `layers` layers adds each layer's probes to the mean's)."""
    state_tasks = len([t for t in options.tasks if t != labels.BRANCH.name])
    branch = int(conditions and labels.BRANCH.name in options.tasks)
    return (1 + layers) * (len(options.depths) * options.seeds * num_semantics
                           * (len(options.offsets) * state_tasks + branch))
