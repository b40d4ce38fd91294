"""Collections on disk (or gs://, through `kareljax.storage`): <workdir>/collect/step_<S>/
<split>-<k>.npz shards plus index.json.

index.json: {"step", "alts", "forced", "per_layer", "layers" (states per spec and token when
per_layer: the states array is [specs, layers, P, d]), "conditions", "layout": {height, width, n_shown},
"splits": {split: {"specs": n, "shards": [file names]}}}.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from kareljax import storage
from kareljax.errors import KareljaxError

SHARD_SPECS = 4096
INDEX = "index.json"
# What a damaged or partly copied file raises when read: a truncated zip archive, a short member,
# JSON cut off.
READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile)


class CollectionReadError(KareljaxError):
    """A collection file that does not read back (damaged, or partly written or copied); the
    message names the file."""


def _unreadable(path: str, error: Exception) -> CollectionReadError:
    return CollectionReadError(f"{path} does not read back ({type(error).__name__}: {error})")


def step_dir(workdir, step: int) -> str:
    return os.path.join(os.fspath(workdir), "collect", f"step_{step:08d}")


def set_aside(directory: str) -> str:
    """Moves a step's collection (or the link to another run's) out of the way of a new one, to
    `replaced_step_<S>` beside it (not a step name, so nothing reads it); returns that path. An
    earlier set-aside copy, left by a collection killed while replacing, is removed first."""
    aside = os.path.join(os.path.dirname(directory), "replaced_" + os.path.basename(directory))
    remove(aside)
    storage.move(directory, aside)            # a link is renamed, its target untouched
    return aside


def put_back(directory: str, aside: str | None) -> None:
    """After a failed or interrupted replacement: the set-aside collection back in its place."""
    if aside is not None:
        remove(directory)
        storage.move(aside, directory)


def remove(path: str | None) -> None:
    """Removes a step's collection, or only the link where it is a link to another run's."""
    if path is None:
        return
    if not storage.is_remote(path) and os.path.islink(path):
        os.unlink(path)
    else:
        storage.rmtree(path, missing_ok=True)


def step_dirs(workdir) -> dict[int, str]:
    """step -> path of every entry of <workdir>/collect named step_<digits> (directories, links
    to another run's, broken links), in step order; {} without a collect directory."""
    root = os.path.join(os.fspath(workdir), "collect")
    if not storage.is_dir(root):
        return {}
    names = [n for n in storage.listdir(root) if n.startswith("step_") and n[5:].isdigit()]
    return {int(n[5:]): os.path.join(root, n) for n in names}


def collected_steps(workdir, splits=None) -> list[int]:
    """The steps with a collection (any split; with `splits`, only those whose index reads back
    and lists all of them)."""
    steps = sorted(s for s, path in step_dirs(workdir).items()
                   if storage.exists(os.path.join(path, INDEX)))
    if splits is None:
        return steps
    return [s for s in steps if _holds(step_dir(workdir, s), splits)]


def broken_links(workdir) -> dict[int, str]:
    """Steps whose collection is a link to another run's that no longer exists (moved, deleted or
    not mounted), with the link's target: `collected_steps` cannot see them (none on gs://)."""
    if storage.is_remote(workdir):
        return {}
    return {s: os.readlink(path) for s, path in step_dirs(workdir).items()
            if os.path.islink(path) and not os.path.exists(path)}


def broken_link_message(workdir, step: int, target: str) -> str:
    return (f"{step_dir(workdir, step)} is a link to {target}, which does not exist (a moved, "
            f"deleted or unmounted run?): restore it, or `kareljax collect --workdir {workdir} "
            f"--steps {step} --overwrite` collects the step here in place of the link")


def _holds(directory: str, splits) -> bool:
    try:
        return not missing_splits(directory, splits)
    except CollectionReadError:
        return False


def missing_splits(directory: str, splits) -> list[str]:
    """Which of `splits` a step's collection lacks (a collection stopped between splits)."""
    have = read_index(directory)["splits"]
    return [split for split in splits if split not in have]


def read_index(directory: str) -> dict:
    """A step's index.json; `CollectionReadError` naming it if it does not read back."""
    path = os.path.join(directory, INDEX)
    try:
        with storage.open(path) as f:
            index = json.load(f)
        if not isinstance(index, dict) or not isinstance(index.get("splits"), dict):
            raise ValueError("no splits listed")
    except READ_ERRORS as e:
        raise _unreadable(path, e) from e
    return index


def write_split(directory: str, split: str, arrays: dict, meta: dict) -> None:
    """Writes one split's arrays (leading axis = specs) in shards and records it in the index
    (written last, atomically, so a split the index lists is complete; a collection stopped
    between splits lists fewer, see `missing_splits`)."""
    storage.makedirs(directory)
    n = len(next(iter(arrays.values())))
    names = []
    for k, start in enumerate(range(0, n, SHARD_SPECS)):
        name = f"{split}-{k:05d}.npz"
        with storage.write_whole(os.path.join(directory, name), "wb") as f:
            np.savez(f, **{key: value[start:start + SHARD_SPECS] for key, value in arrays.items()})
        names.append(name)
    path = os.path.join(directory, INDEX)
    index = read_index(directory) if storage.exists(path) else {**meta, "splits": {}}
    index["splits"][split] = {"specs": n, "shards": names}
    with storage.write_whole(path) as f:
        json.dump(index, f, indent=1)


def read_split(directory: str, split: str) -> dict:
    index = read_index(directory)
    if split not in index["splits"]:
        raise FileNotFoundError(f"{directory} has no {split} collection (has "
                                f"{sorted(index['splits'])})")
    parts = []
    for name in index["splits"][split]["shards"]:
        path = os.path.join(directory, name)
        try:
            with storage.open(path, "rb") as f, np.load(f) as archive:
                parts.append({key: archive[key] for key in archive.files})
        except READ_ERRORS as e:
            raise _unreadable(path, e) from e
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def layer_count(directory: str, index: dict | None = None) -> int:
    """The number of layers in a per-layer collection (0 for one reduced to the mean), as its
    index records them; a per-layer index without the count (kareljax before 2026-11-29) is
    named with the command that collects it again."""
    index = read_index(directory) if index is None else index
    if not index.get("per_layer"):
        return 0
    if "layers" not in index:
        raise CollectionReadError(
            f"{directory}: a per-layer collection whose index has no layer count (an older "
            "kareljax)", hint=f"`kareljax collect --steps {index.get('step', 'S')} --per-layer "
            "--overwrite` collects it again")
    return index["layers"]
