"""A run directory's collection for the probes (what `kareljax collect` and `kareljax reproduce`
run): for every chosen checkpoint (`all`: every kept one plus step 0, the untrained model, the
probes' baseline) and split, the decoded programs, the hidden state producing each program token
(mean over layers, or per layer), the shown examples' traces under the original and alternative
semantics, and the accuracy, in <workdir>/collect/step_<S>/ (`probe.store`'s layout).

    collect_run.run("runs/quick", collect_run.CollectOptions(steps="all"))

Steps collected already are kept (a note names those collected with other options);
`overwrite` collects them again, setting the old collection aside until the new one is complete
and putting it back if it is not (Ctrl-C included).
"""
from __future__ import annotations

import dataclasses
import os
import sys

import jax

from kareljax import storage
from kareljax.config_files import ConfigError

DEFAULT_TRAIN_LIMIT = 50_000         # docs/spec.md §8: the first 50,000 train specs
DEFAULT_ALTS = "0,3,5,8,11"         # the alternatives the report compares


@dataclasses.dataclass(frozen=True)
class CollectOptions:
    steps: str = "all"              # 'all', 'latest' or step numbers like "0,500"
    splits: str = "test,val,train"
    train_limit: int = DEFAULT_TRAIN_LIMIT
    limit: int | None = None        # at most this many specs of every split
    alts: str = DEFAULT_ALTS        # alternative semantics traced besides the original
    per_layer: bool = False
    forced: bool = False            # feed the reference programs instead of decoding
    forced_baseline: bool = True    # ... at step 0 only (the untrained model's are degenerate)
    batch_size: int = 256
    overwrite: bool = False


def _steps(spec: str, available: list[int]) -> list[int]:
    if spec == "all":
        return sorted(set([0] + available))
    if spec == "latest":
        return available[-1:]
    try:
        steps = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--steps: 'all', 'latest' or step numbers like 0,500, got '{spec}'"
                          ) from None
    missing = [s for s in steps if s != 0 and s not in available]
    if missing:
        raise ConfigError(f"--steps: no checkpoint of steps {missing}; the run has {available}")
    return steps


def parse_alts(spec: str, option: str = "--alts") -> tuple[int, ...]:
    """Alternative semantics indices from "0,3,5" ('' for none); ConfigError naming `option`."""
    from kareljax.karel.semantics import ALT_MAPS

    try:
        alts = tuple(int(a) for a in spec.split(",") if a.strip())
        if any(not 0 <= a < len(ALT_MAPS) for a in alts):
            raise ValueError
    except ValueError:
        raise ConfigError(f"{option}: alternative semantics indices in 0..{len(ALT_MAPS) - 1} "
                          f"separated by commas (or none: ''), got '{spec}'") from None
    return alts


def _splits(spec: str) -> list[str]:
    from kareljax.data.dataset_config import SPLITS

    splits = [s.strip() for s in spec.split(",") if s.strip()]
    if not splits or set(splits) - set(SPLITS):
        raise ConfigError(f"--splits: some of {', '.join(SPLITS)} separated by commas, got "
                          f"'{spec}'")
    return splits


def _options(step: int, alts: tuple[int, ...], options: "CollectOptions") -> dict:
    """The collection options a user chooses, as a step's index records them."""
    return {"alts": list(alts), "forced": options.forced or (step == 0 and options.forced_baseline),
            "per_layer": options.per_layer}


def _kept_with_other_options(workdir: str, steps: list[int], alts: tuple[int, ...],
                             options: "CollectOptions") -> str | None:
    """A note naming the already collected `steps` whose options differ from these (they are kept
    without --overwrite), or None."""
    from kareljax.probe import store

    by_difference = {}                                  # what differs -> steps
    for step in steps:
        index = store.read_index(store.step_dir(workdir, step))
        differences = []
        for key, value in _options(step, alts, options).items():
            have = index.get(key)
            if key == "alts" and isinstance(have, list):    # a superset serves as well
                if missing := [a for a in value if a not in have]:
                    differences.append(f"alts {have}, without {missing}")
            elif have != value:
                differences.append(f"{key} {have}, not {value}")
        if differences:
            by_difference.setdefault(", ".join(differences), []).append(step)
    if not by_difference:
        return None
    return ("kareljax collect: note: kept steps collected with other options ("
            + "; ".join(f"{', '.join(map(str, s))}: {d}" for d, s in by_difference.items())
            + "); --overwrite collects them again with these")


def _spec_count(split: str, size: int, options: "CollectOptions") -> int:
    """How many specs of a split of `size` to collect (--train-limit, --limit)."""
    if split == "train":
        size = min(size, options.train_limit)
    return min(size, options.limit) if options.limit else size


def _kept_splits(directory: str, meta: dict, overwrite: bool) -> tuple[set[str], str | None]:
    """(the splits of an earlier collection of this step that stay, where the replaced one was
    set aside). Splits stay from one collected with the same options (stopped between splits);
    under --overwrite or other options the step starts clean and its earlier collection (or the
    link to another run's) is set aside (`store.set_aside`), to be dropped once the new one is
    complete or put back if it is not. An index that does not read back raises
    `store.CollectionReadError` unless under --overwrite."""
    from kareljax.probe import store

    if (not storage.is_remote(directory) and os.path.islink(directory)
            and not os.path.exists(directory)):                        # a broken link
        return set(), store.set_aside(directory)
    if not storage.exists(os.path.join(directory, store.INDEX)):
        return set(), None
    if not overwrite:
        index = store.read_index(directory)   # CollectionReadError when damaged: nothing moved
        if {k: index.get(k) for k in meta} == meta:
            return set(index["splits"]), None
    return set(), store.set_aside(directory)


def _collect_splits(model, readers, counts, directory, meta, options, layout, grammar,
                    data) -> None:
    """Collects `counts[split]` specs of each split into the step's directory (one index entry
    per finished split); `pipeline.DatasetReadError` when the dataset does not read back."""
    import numpy as np
    from tqdm import tqdm
    from kareljax.probe import collect, store

    with tqdm(total=sum(counts.values()), desc=f"step {meta['step']}", unit="spec",
              leave=False, file=sys.stderr) as specs:
        for split, count in counts.items():    # only the splits still to collect
            parts = []
            for start in range(0, count, options.batch_size):
                idx = np.arange(start, min(count, start + options.batch_size))
                part = collect.collect_batch(model, layout, readers[split].read(idx), grammar,
                                             max_steps=data.max_steps, alts=tuple(meta["alts"]),
                                             forced=meta["forced"], per_layer=options.per_layer)
                part["spec_index"] = idx
                parts.append(part)
                specs.update(len(idx))
            arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            if _primary():
                store.write_split(directory, split, arrays, meta)


def run(workdir: str, options: CollectOptions, progress: bool = True) -> dict:
    """Collects the chosen steps of the run in `workdir` (see the module docstring); returns
    {steps, new}. KareljaxError (nothing moved or lost) for bad options, a missing dataset or
    checkpoint, a damaged collection without `overwrite`, or a step linked to a moved run."""
    from tqdm import tqdm
    from kareljax.data import dataset_config, pipeline
    from kareljax.eval.evaluate import program_grammar
    from kareljax.probe import collect, store
    from kareljax.errors import KareljaxError
    from kareljax.train import load

    from kareljax.model import data_parallel
    from kareljax.train import distributed

    distributed.maybe_initialize()      # several processes: one collection over all devices
    mesh = data_parallel.batch_mesh() if len(jax.devices()) > 1 else None
    config = load.run_config(workdir)
    steps = _steps(options.steps, load.checkpoint_steps(workdir))
    alts = parse_alts(options.alts)
    splits = _splits(options.splits)
    readers = {s: pipeline.DatasetReader(config.data, s) for s in splits}
    data = config.data
    layout = dataset_config.layout(data)
    grammar = program_grammar(data)
    done = set(store.collected_steps(workdir, splits))
    todo = [s for s in steps if options.overwrite or s not in done]
    broken = {s: t for s, t in store.broken_links(workdir).items() if s in todo}
    if broken and not options.overwrite:     # nothing could be written through them
        raise KareljaxError("; ".join(store.broken_link_message(workdir, step, target)
                                      for step, target in broken.items()))
    if note := _kept_with_other_options(workdir, [s for s in steps if s not in todo], alts,
                                        options):
        print(note, file=sys.stderr)
    for step in tqdm(todo, desc="checkpoints", unit="ckpt", file=sys.stderr,
                     disable=not todo or not progress):
        # A checkpoint that does not read back stops here; the steps collected before stay.
        model = load.untrained_model(workdir) if step == 0 else load.load_model(
            workdir, step)[1]
        if mesh is not None:            # decoding and states data-parallel over every device
            model = data_parallel.replicate(model, mesh)
        directory = store.step_dir(workdir, step)
        recorded = _options(step, alts, options)
        meta = {"step": step, **recorded,
                "layers": model.n_layers + 1 if options.per_layer else 0,
                "conditions": collect.has_conditions(grammar),
                "layout": {"height": layout.height, "width": layout.width,
                           "n_shown": layout.n_shown}}
        try:
            have, aside = _kept_splits(directory, meta, options.overwrite) if _primary() else (
                set(), None)
        except store.CollectionReadError as e:
            raise store.CollectionReadError(
                f"step {step}: {e}", hint=f"`--steps {step} --overwrite` collects it again") from e
        have = _from_process_zero(have, splits)
        counts = {split: _spec_count(split, len(reader), options)
                  for split, reader in readers.items() if split not in have}
        try:
            _collect_splits(model, readers, counts, directory, meta, options, layout, grammar,
                            data)
        except BaseException:       # Ctrl-C and a damaged dataset included: the replaced
            store.put_back(directory, aside)    # collection comes back, earlier steps stay
            raise
        store.remove(aside)
        _barrier(f"kareljax_collected_{step}")
    return {"steps": steps, "new": len(todo), "devices": jax.device_count(),
            "processes": jax.process_count()}


def _primary() -> bool:
    """Whether this process writes the collection (process 0 of several; the only one)."""
    return jax.process_index() == 0


def _from_process_zero(have: set[str], splits: list[str]) -> set[str]:
    """The splits process 0 keeps, on every process (several processes collect together)."""
    if jax.process_count() == 1:
        return have
    import numpy as np
    from jax.experimental import multihost_utils
    mask = multihost_utils.broadcast_one_to_all(np.array([s in have for s in splits]))
    return {s for s, kept in zip(splits, mask) if kept}


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)
