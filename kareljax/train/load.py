"""Reading a run back: its config, its checkpoint steps, and the model of a checkpoint."""
from __future__ import annotations

import dataclasses
import os

import jax
import ml_collections
from flax import nnx

from kareljax.config_files import ConfigError
from kareljax.errors import KareljaxError
from kareljax.train import checkpoints as ckpt_lib
from kareljax.train import mesh as mesh_lib
from kareljax.train import optimizer, train_config
from kareljax.train import state as state_lib
from kareljax.train.loop import CHECKPOINT_DIR, CONFIG_FILE, read_recorded_config


class RunNotFoundError(KareljaxError, FileNotFoundError):
    """The workdir holds no run (no config.json) or no checkpoint."""


def run_config(workdir: str | os.PathLike) -> ml_collections.ConfigDict:
    path = os.path.join(os.fspath(workdir), CONFIG_FILE)
    try:
        recorded = read_recorded_config(os.fspath(workdir))
    except ConfigError as e:
        raise RunNotFoundError(str(e)) from e
    if recorded is None:
        raise RunNotFoundError(f"{path} does not exist: is {workdir} a training run directory "
                               "(kareljax train --workdir ...)?")
    return ml_collections.ConfigDict(recorded)


def _checkpoints(workdir) -> ckpt_lib.Checkpoints:
    """A read-only view: safe beside a trainer that is still saving into the same directory."""
    return ckpt_lib.Checkpoints(os.path.join(os.fspath(workdir), CHECKPOINT_DIR), read_only=True)


def checkpoint_steps(workdir) -> list[int]:
    run_config(workdir)  # RunNotFoundError unless workdir holds a run
    ckpts = _checkpoints(workdir)
    try:
        return ckpts.steps()
    finally:
        ckpts.close()


def _restore(workdir, step: int | None, mesh) -> tuple[ml_collections.ConfigDict, int, dict]:
    """(the run's config, step, params) of checkpoint `step` (default: the newest readable),
    the arrays placed on `mesh` as training places them. Only the parameters and the step are
    read, not the optimizer's moments (twice the parameters' bytes)."""
    config = run_config(workdir)
    tx, _ = optimizer.make(config.train)
    full, _ = state_lib.abstract_state(config.model, tx, mesh)
    abstract = {"params": full["params"], "step": full["step"]}
    ckpts = _checkpoints(workdir)
    try:
        if step is not None and step not in ckpts.steps():
            raise RunNotFoundError(f"{workdir} has no checkpoint of step {step}; it has "
                                   f"{ckpts.steps()}")
        restored = ckpts.restore(abstract, step, partial=True)
    finally:
        ckpts.close()
    if restored is None:
        raise RunNotFoundError(f"{workdir} has no checkpoint yet")
    return config, restored.step, restored.state["params"]


def load_model(workdir, step: int | None = None) -> tuple[int, nnx.Module]:
    """(step, model) of checkpoint `step` (default: the newest readable), on one device."""
    mesh = mesh_lib.make_mesh(1, 1, jax.local_devices()[:1])
    config, step, params = _restore(workdir, step, mesh)
    return step, nnx.merge(state_lib.graphdef(config.model), params)


def warm_start_params(model_cfg: ml_collections.ConfigDict, workdir, step: int | None, mesh
                      ) -> tuple[int, dict]:
    """(step, params) of run `workdir`'s checkpoint `step` (default: the newest readable),
    placed on `mesh`, for a run whose model section is `model_cfg`: ConfigError unless both
    models have the same shapes."""
    source = run_config(workdir)
    ours, theirs = (dataclasses.replace(train_config.model_size(m), max_len=None)
                    for m in (model_cfg, source.model))        # max_len sizes caches only
    if ours != theirs:
        raise ConfigError(f"train.init_from: {workdir}'s model ({theirs}) differs from this "
                          f"run's ({ours}); a warm start needs the same shapes")
    _, step, params = _restore(workdir, step, mesh)
    return step, params


def untrained_model(workdir) -> nnx.Module:
    """The run's model at initialisation (step 0, from the run's seed): the probes' baseline."""
    config = run_config(workdir)
    key = state_lib.params_key(config.train.seed)
    params = jax.jit(lambda k: state_lib.init_fn(config.model, optimizer.make(config.train)[0])(
        k)["params"])(key)
    return nnx.merge(state_lib.graphdef(config.model), params)
