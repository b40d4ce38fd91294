"""`train(config, workdir)`: the training run, new or resumed.

    result = train(config_files.load("tiny"), "runs/tiny")

A workdir holds config.json, metrics.jsonl, tensorboard/ and checkpoints/. If it has checkpoints,
the run resumes from the newest readable one (parameters, optimizer, step and data position), so a
killed run continued with the same command ends with the same parameters, bit for bit, as one that
never stopped. Metrics line N (and checkpoint N) describe the state after N updates; the loss of
line N is that of the batch of update N, before the update.

The host runs one step behind the device: it dispatches step N + 1 before reading step N's metrics,
so the device never waits on logging. A non-finite loss or gradient norm stops the run before its
state is saved (NonFiniteLossError); a checkpoint of the parameters that gave the non-finite loss is
moved to <workdir>/nonfinite_checkpoints/, so the newest one left is the last good one. Ctrl-C
stops the run at the next step boundary, with that step saved (`kareljax.train.interrupt`).

Multi-host: every process runs the same command; see `kareljax.train.distributed`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from flax import nnx

from kareljax import storage
from kareljax.config_files import ConfigError
from kareljax.train import checkpoints as ckpt_lib
from kareljax.train import distributed, inputs, interrupt, optimizer, train_config
from kareljax.train import mesh as mesh_lib
from kareljax.train import state as state_lib
from kareljax.train.metrics import MetricsWriter
from kareljax.train.step import make_train_step

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
_NOT_IDENTITY = ("data_dir",)   # data options that may change between a run's sessions


class NonFiniteLossError(RuntimeError):
    """The loss or gradient norm became NaN/Inf; the run stopped without saving that state."""


@dataclasses.dataclass
class TrainResult:
    step: int                 # updates applied
    state: Any                # the final train state (on the mesh)
    metrics: dict             # the last metrics line written
    mesh: jax.sharding.Mesh
    graphdef: Any


def _as_json(config: ml_collections.ConfigDict) -> dict:
    return json.loads(config.to_json())


def read_recorded_config(workdir: str) -> dict | None:
    """The config a run recorded in <workdir>/config.json, None if there is none; ConfigError
    naming the file (and the copy every checkpoint keeps) if it does not read back."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not storage.exists(path):
        return None
    try:
        recorded = json.loads(storage.read_text(path))
        if not isinstance(recorded, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path} does not read back ({type(e).__name__}: {e}); every "
                          "checkpoint keeps a copy of it: "
                          f"{os.path.join(workdir, CHECKPOINT_DIR)}/<step>/config/metadata"
                          ) from e
    return recorded


def _identity(section: str, values: dict) -> dict:
    """The options of a config section that a run's checkpoints depend on: the model's resolved
    dimensions (its named size's, with the fields set over them) and the rest of its options but
    the size's name; every data option but `_NOT_IDENTITY`'s."""
    if section != "model":       # data.order is new: a run recorded without it is synthesis
        values = {"order": "synthesis", **values} if section == "data" else values
        return {k: v for k, v in values.items() if k not in _NOT_IDENTITY}
    rest = {k: v for k, v in values.items() if k != "size" and k not in train_config.SIZE_FIELDS}
    try:
        dims = dataclasses.asdict(train_config.model_size(ml_collections.ConfigDict(values)))
    except (ConfigError, KeyError, AttributeError):   # a size this version does not know
        return dict(values)
    return {**rest, **dims}


def summary_text(metrics: dict) -> str:
    """", loss L, T tokens/s" from a run's last metrics line (what it has of them)."""
    text = f", loss {metrics['loss']:.4f}" if "loss" in metrics else ""
    if "tokens_per_s" in metrics:
        text += f", {metrics['tokens_per_s']:,.0f} tokens/s"
    return text


def interrupted_note(workdir: str) -> str:
    """What a Ctrl-C leaves: the newest checkpoint, from which the same command resumes."""
    from kareljax.train import load

    try:
        steps = load.checkpoint_steps(workdir)
    except Exception:                   # noqa: BLE001  (only for the message)
        steps = []
    if not steps:
        return "interrupted before the first checkpoint: the same command starts again"
    return (f"interrupted; the newest checkpoint is step {steps[-1]} (in "
            f"{os.path.join(workdir, CHECKPOINT_DIR)}): the same command resumes from it")


def check_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Rejects a workdir whose earlier run used another model or dataset, or whose config.json
    does not read back."""
    if storage.exists(workdir) and not storage.is_dir(workdir):
        raise ConfigError(f"--workdir {workdir} is a file, not a run directory")
    now = _as_json(config)
    before = read_recorded_config(workdir)
    if before is not None:
        for section in ("model", "data"):
            old, new = (_identity(section, c.get(section, {})) for c in (before, now))
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            if changed:
                raise ConfigError(
                    f"--workdir: {workdir} holds a run with other {section} options ("
                    + ", ".join(f"{section}.{k}: {old.get(k)!r} there, {new.get(k)!r} now"
                                for k in changed) + "); use a new workdir")


def record_config(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Writes the run's config to <workdir>/config.json (once its checkpoints have read back)."""
    if jax.process_index() == 0:
        path = os.path.join(workdir, CONFIG_FILE)
        storage.makedirs(workdir)
        with storage.write_whole(path) as f:
            json.dump(_as_json(config), f, indent=2)


def _periodic_eval(config: ml_collections.ConfigDict):
    """model -> {val_correct, val_correct_gen, val_exact, val_distinct} on the first
    `eval_examples` val specs (`val_distinct`: distinct programs over specs)."""
    from kareljax.data import pipeline
    from kareljax.eval import evaluate

    reader = pipeline.DatasetReader(config.data, "val")
    records = reader.read(np.arange(min(config.train.eval_examples, len(reader))))

    def run(model) -> dict:
        summary, _ = evaluate.evaluate(model, config.data, records,
                                       batch_size=min(256, len(records["length"])))
        return {f"val_{k}": summary[k] for k in ("correct", "correct_gen", "exact", "distinct")}

    return run


def build_mesh(train: ml_collections.ConfigDict, devices=None, multi_process: bool | None = None
               ) -> jax.sharding.Mesh:
    """The configured mesh over `devices` (default: every device of the run), after checking
    the batch splits evenly over it."""
    mesh = mesh_lib.make_mesh(train.mesh.data, train.mesh.fsdp, devices, multi_process)
    shards, micro = mesh_lib.batch_shards(mesh), train.batch_size // train.grad_accum
    if micro % shards:
        raise ConfigError(
            f"train.batch_size: {train.batch_size} sequences in {train.grad_accum} micro-batches "
            f"are {micro} per micro-batch, which the {shards} devices of the mesh "
            f"(data {mesh.shape['data']} x fsdp {mesh.shape['fsdp']}) do not divide")
    return mesh


class _Window:
    """Sums over the steps since the last metrics line."""

    def __init__(self):
        self.steps = self.timed_steps = 0
        self.loss = self.grad_norm = self.tokens = self.seconds = 0.0

    def add(self, m: dict, seconds: float | None) -> None:
        self.steps += 1
        self.loss += float(m["loss"])
        self.grad_norm += float(m["grad_norm"])
        if seconds is not None:
            self.timed_steps += 1
            self.tokens += float(m["tokens"])
            self.seconds += seconds

    def scalars(self, m: dict) -> dict:
        out = {"loss": self.loss / self.steps, "grad_norm": self.grad_norm / self.steps,
               "lr": float(m["lr"]), "targets": float(m["targets"])}
        if self.timed_steps:
            out["tokens_per_s"] = self.tokens / self.seconds
            out["step_time_s"] = self.seconds / self.timed_steps
        return out


def _non_finite(ckpts: ckpt_lib.Checkpoints, step: int, m: dict) -> NonFiniteLossError:
    """The error for a non-finite loss at `step`, after setting aside the checkpoint of the
    parameters that gave it (the loss of line `step` is that of the state after step - 1)."""
    ckpts.wait()
    bad = [ckpts.set_aside(t, "nonfinite_checkpoints", "gave a non-finite loss")
           for t in ckpts.steps() if t >= step - 1]
    good = ckpts.steps()
    where = (f"the last good checkpoint is step {good[-1]} in {ckpts.directory}" if good
             else "no good checkpoint was saved")
    return NonFiniteLossError(
        f"the loss became {float(m['loss'])} (gradient norm {float(m['grad_norm'])}) at step "
        f"{step}; stopped without saving it; {where}"
        + (f" (set aside: {', '.join(bad)})" if bad else ""))


def train(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
          progress_bar: bool = True) -> TrainResult:
    """Trains `config` in `workdir` to `config.train.num_steps` updates (resuming if it can)."""
    distributed.maybe_initialize()
    train_config.validate(config)
    tc = config.train
    workdir = os.fspath(storage.path(workdir))      # local (absolute) or gs://
    mesh = build_mesh(tc)
    check_workdir(config, workdir)
    primary = jax.process_index() == 0
    if tc.data_source == "dataset" or tc.eval_every:      # periodic eval reads the val split
        inputs.ensure_dataset(config.data)

    tx, lr = optimizer.make(tc)
    graphdef = state_lib.graphdef(config.model)
    abstract, shardings = state_lib.abstract_state(config.model, tx, mesh)
    ckpts = ckpt_lib.Checkpoints(os.path.join(workdir, CHECKPOINT_DIR),
                                 checkpoint_every=tc.checkpoint_every,
                                 keep_latest_every=tc.keep_latest_every)
    try:
        restored = ckpts.restore(abstract)
    except ckpt_lib.CheckpointReadError as e:
        e.hint = (f"to train this run again from step 0, move {e.directory} elsewhere "
                  "(kareljax deletes no checkpoint)")
        raise
    record_config(config, workdir)
    warm_from = None
    if restored is not None:
        start, state, saved_data = restored.step, restored.state, restored.data
    elif tc.init_from:            # a warm start: another run's parameters, all else fresh
        from kareljax.train import load    # load reads runs through this module's constants
        warm_step, params = load.warm_start_params(config.model, tc.init_from,
                                                   tc.init_from_step, mesh)
        state, start, saved_data = state_lib.warm_state(params, tx, shardings), 0, None
        warm_from = os.path.join(tc.init_from, CHECKPOINT_DIR, str(warm_step))
    else:
        state = state_lib.init_state(config.model, tx, tc.seed, shardings)
        start, saved_data = 0, None
    source = inputs.batch_source(config, mesh, saved_data)
    step_fn = make_train_step(graphdef, tx, lr, shardings, mesh_lib.batch_sharding(mesh, 3, 1),
                              mesh_lib.replicated(mesh))
    writer = MetricsWriter(workdir, total_steps=tc.num_steps, initial_step=start, enabled=primary,
                           progress_bar=progress_bar and start < tc.num_steps)
    config_json = _as_json(config)
    if restored is not None:
        writer.event("resumed", start, checkpoint=os.path.join(ckpts.directory, str(start)))
    else:
        writer.event("started", 0, devices=mesh.devices.size, processes=jax.process_count(),
                     **({"warm_start": warm_from} if warm_from else {}))

    periodic_eval = _periodic_eval(config) if tc.eval_every and jax.process_count() == 1 else None
    last_line: dict = {}
    window, clock = _Window(), [time.perf_counter(), True]   # [time of last read, first step?]

    def finish(step: int, metrics) -> None:
        """Reads step `step`'s metrics (blocking), stops on NaN/Inf, logs."""
        nonlocal window, last_line
        m = {k: np.asarray(v.addressable_data(0)) for k, v in metrics.items()}  # replicated
        now = time.perf_counter()
        seconds = None if clock[1] else now - clock[0]
        if clock[1]:
            writer.event("compiled", step, seconds=round(now - clock[0], 2))
        clock[:] = [now, False]
        if not (math.isfinite(float(m["loss"])) and math.isfinite(float(m["grad_norm"]))):
            writer.event("stopped", step, reason="non-finite loss")
            raise _non_finite(ckpts, step, m)
        window.add(m, seconds)
        if step % tc.log_every == 0 or step == tc.num_steps:
            scalars = window.scalars(m)
            writer.write(step, scalars)
            last_line, window = {"step": step, **scalars}, _Window()
        writer.progress(step, loss=float(m["loss"]))

    multi_process = jax.process_count() > 1
    with interrupt.deferred_sigint() as stop_request:
        try:
            pending = None
            for s in range(start, tc.num_steps):
                state, metrics = step_fn(state, source.next(s))
                if pending is not None:
                    finish(*pending)
                pending = (s + 1, metrics)
                final = s + 1 == tc.num_steps
                if periodic_eval is not None and ((s + 1) % tc.eval_every == 0 or final):
                    writer.write(s + 1, periodic_eval(nnx.merge(graphdef, state["params"])))
                periodic = ckpts.should_save(s + 1)
                stop = not final and interrupt.should_stop(stop_request, periodic, multi_process)
                if final or stop or periodic:
                    finish(*pending)
                    pending = None
                    ckpts.save(s + 1, state, source.state(), config_json, force=final or stop)
                if stop:                 # Ctrl-C: this step saved, the run ends here
                    ckpts.wait()
                    writer.event("stopped", s + 1, reason="interrupted")
                    raise KeyboardInterrupt
            if pending is not None:
                finish(*pending)
            ckpts.wait()
            if start >= tc.num_steps:
                writer.message(f"{workdir} has already trained {start} steps")
            else:
                writer.event("finished", tc.num_steps)
        finally:
            ckpts.wait()
            ckpts.close()
            writer.close()
    return TrainResult(max(start, tc.num_steps), state, last_line, mesh, graphdef)
