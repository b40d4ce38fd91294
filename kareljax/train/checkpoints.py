"""Training checkpoints with orbax: permanent ones for probe scans, rolling ones for resuming.

One `CheckpointManager` under `<workdir>/checkpoints/<step>/`, items:
  state   the train state (params, optimizer state, step), sharded arrays (OCDBT)
  data    the data iterator's state (JSON)
  config  the run's config (JSON)
It saves at every multiple of `checkpoint_every` (kept forever) and of `keep_latest_every` (only the
newest two checkpoints of all are kept besides the permanent ones), plus a forced save at the end.
Orbax writes each step into a temporary folder and renames it when complete (asynchronously, after
a blocking copy to host memory), so a killed run leaves no half-written step behind.

`restore` reads the newest step that reads back: newer steps that fail (a truncated or corrupted
file) are moved to `<workdir>/corrupt_checkpoints/` with a warning naming them. When no step reads
back, or the one asked for does not, `CheckpointReadError` names each step and why, and nothing is
moved.
The caller passes the abstract state with the shardings it wants (any mesh: a run saved on four
devices restores onto one).

Readers (`read_only=True`: eval, collect, scan) never write: they leave orbax's temporary folders
alone (a trainer may be finalising one), create nothing and move nothing; a newest checkpoint that
does not read back is skipped with a warning instead of being set aside.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from kareljax import log_filters, storage
from kareljax.errors import KareljaxError

KEEP_ROLLING = 2


# Readers open runs read-only on purpose, once per checkpoint; orbax's warning about it would only
# clutter their progress bars.
logging.getLogger("absl").addFilter(log_filters.DropMessages("Given directory is read only"))


@dataclasses.dataclass
class Restored:
    step: int
    state: Any
    data: dict
    config: dict


class CheckpointReadError(KareljaxError, RuntimeError):
    """No checkpoint of a run reads back (or not the one asked for); nothing was moved."""

    def __init__(self, message: str, directory: str):
        super().__init__(message)
        self.directory = directory


def _why(error: Exception) -> str:
    """The first line of a read error's root cause, short (orbax wraps tensorstore's error, which
    names the file, in one that appends a whole TensorStore spec)."""
    while error.__cause__ is not None:
        error = error.__cause__
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first[:300]}"


class CorruptCheckpointWarning(UserWarning):
    """A checkpoint was set aside (it did not read back, or its parameters gave a NaN loss)."""


def _state_args(abstract_state, partial: bool):
    """Orbax's restore arguments for the state item: all of it, or only what `abstract_state`
    names (orbax's partial restore reads nothing else)."""
    if not partial:
        return ocp.args.StandardRestore(abstract_state)
    return ocp.args.PyTreeRestore(
        item=abstract_state, partial_restore=True,
        restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_state))


class Checkpoints:
    """Saving and restoring the checkpoints of one run directory."""

    def __init__(self, directory: str | os.PathLike, *, checkpoint_every: int | None = None,
                 keep_latest_every: int | None = None, async_save: bool = True,
                 read_only: bool = False):
        if not read_only and not (checkpoint_every and keep_latest_every):
            raise ValueError("a writable Checkpoints needs checkpoint_every and keep_latest_every")
        self.directory = os.fspath(storage.path(directory))   # local (absolute) or gs://
        self.read_only = read_only
        if read_only:
            options = ocp.CheckpointManagerOptions(
                read_only=True, create=False, cleanup_tmp_directories=False, save_interval_steps=0,
                enable_async_checkpointing=False)
        else:
            options = ocp.CheckpointManagerOptions(
                save_decision_policy=policies.AnySavePolicy([
                    policies.FixedIntervalPolicy(checkpoint_every),
                    policies.FixedIntervalPolicy(keep_latest_every)]),
                preservation_policy=policies.AnyPreservationPolicy([
                    policies.EveryNSteps(checkpoint_every), policies.LatestN(KEEP_ROLLING)]),
                enable_async_checkpointing=async_save, cleanup_tmp_directories=True, create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_names=("state", "data", "config"))

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def should_save(self, step: int) -> bool:
        return self.manager.should_save(step)

    def save(self, step: int, state, data_state: dict, config: dict, *, force: bool = False
             ) -> bool:
        """Saves if the policy says so (or `force`); returns whether it did. Returns once the
        arrays are copied off the device; the files are written in the background."""
        return self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state),
            config=ocp.args.JsonSave(config)), force=force)

    def restore(self, abstract_state, step: int | None = None, *, partial: bool = False
                ) -> Restored | None:
        """The newest readable checkpoint (or exactly `step`), arrays placed by the shardings of
        `abstract_state` (ShapeDtypeStructs); None when there is none at all. `partial`: the
        state's entries that `abstract_state` names only (say params and step, a third of a
        state with AdamW's moments), the others left unread.

        Newer checkpoints that fail to read are set aside only once an older one reads back;
        when none does (say the model changed), nothing is moved and CheckpointReadError lists
        why."""
        log_filters.quiet_abandoned_checkpoint_reads()
        candidates = [step] if step is not None else self.steps()[::-1]
        failed = []
        for s in candidates:
            try:
                restored = self.manager.restore(s, args=ocp.args.Composite(
                    state=_state_args(abstract_state, partial),
                    data=ocp.args.JsonRestore(), config=ocp.args.JsonRestore()))
                if int(restored.state["step"]) != s:
                    raise ValueError(f"its state says step {int(restored.state['step'])}")
            except Exception as e:  # orbax/tensorstore raise many types for damaged files
                failed.append((s, _why(e)))
                continue
            for bad, error in failed:
                if self.read_only:
                    warnings.warn(f"checkpoint {os.path.join(self.directory, str(bad))} does not "
                                  f"read back ({error}); using step {s} instead",
                                  CorruptCheckpointWarning, stacklevel=2)
                    continue
                self.set_aside(bad, "corrupt_checkpoints", f"does not read back ({error}); "
                               f"resuming from step {s} instead")
            return Restored(s, restored.state, dict(restored.data), dict(restored.config))
        if failed:
            head = (f"checkpoint {step} of {self.directory} does not read back" if step is not None
                    else f"no checkpoint in {self.directory} reads back")
            raise CheckpointReadError(
                f"{head} (nothing was moved; damaged files, or a checkpoint of another model):\n" +
                "\n".join(f"  step {s}: {error}" for s, error in failed), self.directory)
        return None

    def set_aside(self, step: int, folder: str, reason: str) -> str:
        """Moves checkpoint `step` to `<workdir>/<folder>/<step>` (out of the resume order) with a
        warning giving `reason`; returns the new path."""
        path = os.path.join(self.directory, str(step))
        aside = os.path.join(os.path.dirname(self.directory), folder, str(step))
        warnings.warn(f"checkpoint {path} {reason}; moved it to {aside}", CorruptCheckpointWarning,
                      stacklevel=2)
        if jax.process_index() == 0:
            storage.move(path, aside)
        ocp.multihost.sync_global_processes(f"kareljax_set_aside_{folder}_{step}")
        self.manager.reload()
        return aside

    def wait(self) -> None:
        """Blocks until the last save is on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()
