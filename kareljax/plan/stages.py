"""Each jitted stage of a run, as the run calls it, on a target's devices: the function, its
abstract arguments (shapes, dtypes, shardings; no arrays are made), what it costs by formula and
how many calls a whole run makes.

- `train_step`: `train.step.make_train_step` over the config's mesh (every device of the target),
  gradient accumulation, the AdamW update and the metrics included;
- `decode`: `model.decode._greedy_cached`, the prefill and the grammar-constrained greedy loop
  with the KV cache, one batch of `batch` specs on one device (`kareljax eval` and `collect`
  split their rows over every device, each computing as this one does);
- `collect`: `probe.collect.sequence_states`, the forward pass that keeps the hidden states, for
  one batch of prompts + programs on one device (the rows split the same way);
- `scan`: `probe.fit.fit`, one call training the largest chunk of the deepest probes (`mlp2`)
  that the scan's memory budget puts in one call, on one device (`fit.fit_sharded` gives each
  device its share of the probes, `fit.fit_sources` whole checkpoints' probes, one input after
  another); at the config's scan settings,
  and `scan_paper` at docs/spec.md §9's (10,000 steps of 1,024, 100,000 train samples).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx
from jax.sharding import SingleDeviceSharding

from kareljax.data import dataset_config
from kareljax.eval.evaluate import program_grammar
from kareljax.model import decode as decode_lib
from kareljax.plan import flops
from kareljax.probe import collect as collect_lib
from kareljax.probe import fit as fit_lib
from kareljax.probe import jobs as jobs_lib
from kareljax.probe import labels, models, options as options_lib
from kareljax.probe import scan as scan_lib
from kareljax.train import mesh as mesh_lib
from kareljax.train import optimizer, train_config
from kareljax.train import state as state_lib
from kareljax.train.loop import build_mesh
from kareljax.train.step import BATCH_KEYS, make_train_step

STAGES = ("train_step", "decode", "collect", "scan", "scan_paper")
DEFAULT_BATCH = 256      # `kareljax eval` and `collect` --batch-size


@dataclasses.dataclass
class Stage:
    name: str
    lower: Callable[[], jax.stages.Lowered]
    devices: int                 # devices one call runs on
    flops: float                 # per call, all devices together (formula)
    bytes_per_device: float      # per call (formula; see `flops`)
    xla_counts_all: bool         # XLA's cost analysis sees every op of a call (no loops)
    calls: float                 # calls in a whole run
    detail: str                  # the shapes, in words
    key: tuple = ()              # equal keys on equal chips: the same program


def _abstract(shape, dtype, sharding):
    return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)


def checkpoints_of(config: ml_collections.ConfigDict) -> int:
    """Checkpoints a run collects and scans: step 0 and every permanent one."""
    tc = config.train
    return tc.num_steps // tc.checkpoint_every + 1


def collected_specs(config: ml_collections.ConfigDict) -> int:
    """Specs `collect` decodes at each checkpoint: the probe section's train limit (default
    50,000) of the train split, and the whole val and test splits."""
    data = config.data
    limit = options_lib.probe_of(config).collect.train_limit
    return (min(limit, dataset_config.split_size(data, "train"))
            + dataset_config.split_size(data, "val") + dataset_config.split_size(data, "test"))


def train_stage(config: ml_collections.ConfigDict, devices: list, hosts: int) -> Stage:
    tc = config.train
    mesh = build_mesh(tc, devices, multi_process=hosts > 1)
    tx, lr = optimizer.make(tc)
    graphdef = state_lib.graphdef(config.model)
    abstract, shardings = state_lib.abstract_state(config.model, tx, mesh)
    batch_sharding = mesh_lib.batch_sharding(mesh, 3, 1)
    step = make_train_step(graphdef, tx, lr, shardings, batch_sharding, mesh_lib.replicated(mesh),
                           trace_guard=False)
    length = dataset_config.layout(config.data).max_length
    shape = (tc.grad_accum, tc.batch_size // tc.grad_accum, length)
    dtypes = {"tokens": jnp.int32, "loss_mask": jnp.bool_, "valid": jnp.bool_}
    batch = {k: _abstract(shape, dtypes[k], batch_sharding) for k in BATCH_KEYS}
    size = train_config.model_size(config.model)
    dtype_bytes = jnp.dtype(train_config.dtype(config.model)).itemsize
    per_device = tc.batch_size * length // mesh.devices.size
    return Stage(
        "train_step", lambda: step.lower(abstract, batch), mesh.devices.size,
        flops.train_step(size, tc.batch_size, length),
        flops.train_step_bytes(size, per_device, mesh.shape["fsdp"], dtype_bytes),
        tc.grad_accum == 1, tc.num_steps,
        f"{tc.batch_size} x {length} slots in {tc.grad_accum} micro-batch(es), mesh data "
        f"{mesh.shape['data']} x fsdp {mesh.shape['fsdp']}",
        key=("train_step", tc.batch_size, tc.grad_accum, mesh.shape["data"], mesh.shape["fsdp"]))


def _model_on(config: ml_collections.ConfigDict, device):
    """(graphdef, abstract float32 parameters on `device`) of the config's model."""
    graphdef, params = nnx.split(nnx.eval_shape(
        lambda: state_lib._model(config.model, jax.random.key(0))))
    sharding = SingleDeviceSharding(device)
    return graphdef, jax.tree.map(lambda x: _abstract(x.shape, x.dtype, sharding), params)


def decode_stage(config: ml_collections.ConfigDict, device, batch: int) -> Stage:
    layout = dataset_config.layout(config.data)
    grammar = program_grammar(config.data)
    max_new = grammar.max_tokens - 1
    graphdef, params = _model_on(config, device)
    sharding = SingleDeviceSharding(device)
    prompts = _abstract((batch, layout.prompt_length), jnp.int32, sharding)
    forced = _abstract((batch, 0), jnp.int32, sharding)
    size = train_config.model_size(config.model)
    dtype_bytes = jnp.dtype(train_config.dtype(config.model)).itemsize
    batches = math.ceil(dataset_config.split_size(config.data, "test") / batch) \
        + checkpoints_of(config) * math.ceil(collected_specs(config) / batch)
    return Stage(
        "decode",
        lambda: decode_lib._greedy_cached.lower(graphdef, params, prompts, forced,
                                                grammar=grammar, max_new=max_new),
        1, flops.decode(size, batch, layout.prompt_length, max_new),
        flops.decode_bytes(size, batch, layout.prompt_length, max_new, dtype_bytes), False,
        batches, f"{batch} specs, prompt {layout.prompt_length}, up to {max_new} new tokens",
        key=("decode", batch))


def collect_stage(config: ml_collections.ConfigDict, device, batch: int) -> Stage:
    layout = dataset_config.layout(config.data)
    length = layout.prompt_length + program_grammar(config.data).max_tokens - 1
    graphdef, params = _model_on(config, device)
    sequence = _abstract((batch, length), jnp.int32, SingleDeviceSharding(device))
    size = train_config.model_size(config.model)
    dtype_bytes = jnp.dtype(train_config.dtype(config.model)).itemsize
    return Stage(
        "collect",
        lambda: collect_lib.sequence_states.lower(graphdef, params, sequence, per_layer=False),
        1, flops.forward(size, batch, length), flops.forward_bytes(size, batch * length, dtype_bytes),
        True,
        checkpoints_of(config) * math.ceil(collected_specs(config) / batch),
        f"{batch} sequences of {length} tokens, mean over layers", key=("collect", batch))


def _semantics(config: ml_collections.ConfigDict) -> int:
    from kareljax.probe import collect_run
    alts = str(options_lib.probe_of(config).collect.alts)
    return 1 + len(collect_run.parse_alts(alts, "probe.collect.alts"))


def scan_stage(config: ml_collections.ConfigDict, device, options: scan_lib.ScanOptions,
               name: str = "scan") -> Stage:
    """One `fit` call of the deepest probes at the scan's largest shapes (sample arrays padded
    to their limits' buckets), and the calls of every depth a whole scan makes, counted by
    their FLOPs in units of this call's."""
    data = config.data
    d = train_config.model_size(config.model).d_model
    task_list = [t for t in labels.tasks(data.world_height, data.world_width)
                 if t.name in options.tasks]
    heads = max(len(t.heads) for t in task_list)
    outputs = max(sum(t.heads) for t in task_list)
    num = len(options.offsets) * _semantics(config) * len(task_list)
    deepest = max(options.depths, key=lambda depth: sum(models.DEPTHS[depth]))
    hidden = models.DEPTHS[deepest]

    def chunking(depth):
        widths = (d,) + models.DEPTHS[depth] + (outputs,)
        chunk = jobs_lib.chunk_size(options, num, widths)
        return widths, chunk, math.ceil(num / chunk)

    widths, chunk, _ = chunking(deepest)
    fo = options.fit
    rows_train = scan_lib.bucket(options.max_train_samples)
    rows_eval = scan_lib.bucket(options.max_eval_samples)
    sharding = SingleDeviceSharding(device)
    key_type = jax.eval_shape(lambda: jax.random.key(0)).dtype
    args = (
        _abstract((chunk,), key_type, sharding), _abstract((), key_type, sharding),
        _abstract((chunk, rows_train, heads), jnp.int32, sharding),
        _abstract((chunk, rows_eval, heads), jnp.int32, sharding),
        _abstract((chunk, rows_eval, heads), jnp.int32, sharding),
        _abstract((chunk, heads, outputs), jnp.bool_, sharding),
        _abstract((chunk, heads), jnp.int32, sharding),
        _abstract((chunk, heads), jnp.bool_, sharding),
        _abstract((rows_train, d), jnp.float32, sharding),
        _abstract((rows_eval, d), jnp.float32, sharding),
        _abstract((rows_eval, d), jnp.float32, sharding),
        _abstract((3,), jnp.int32, sharding))

    def call_flops(w, probes):
        return flops.fit(probes, w, fo.steps, fo.batch_size, fo.eval_every, 2 * rows_eval)

    this = call_flops(widths, chunk)
    per_checkpoint = sum(options.seeds * calls * call_flops(w, c)
                         for w, c, calls in map(chunking, options.depths))
    return Stage(
        name,
        lambda: fit_lib.fit.lower(*args, hidden=hidden, num_outputs=outputs, options=fo),
        1, this, flops.fit_bytes(chunk, widths, fo.steps, fo.batch_size), False,
        checkpoints_of(config) * per_checkpoint / this,
        f"{chunk} of {num} {deepest} probes a call, {fo.steps} steps of {fo.batch_size}, "
        f"{rows_train} train rows", key=("fit", chunk, rows_train, rows_eval, d, outputs, fo))


def build(config: ml_collections.ConfigDict, devices: list, hosts: int, stage: str,
          batch: int = DEFAULT_BATCH) -> Stage:
    """The stage called `stage` of `config` on `devices` (of `hosts` hosts)."""
    if stage == "train_step":
        return train_stage(config, devices, hosts)
    if stage == "decode":
        return decode_stage(config, devices[0], batch)
    if stage == "collect":
        return collect_stage(config, devices[0], batch)
    if stage == "scan":
        return scan_stage(config, devices[0], options_lib.config_scan_options(config))
    if stage == "scan_paper":
        return scan_stage(config, devices[0], options_lib.config_scan_options(config, "paper"),
                          "scan_paper")
    raise ValueError(f"unknown stage {stage!r}; the stages are {STAGES}")
