"""The `model` and `train` sections of an experiment config: defaults, and `validate`, which names
the first option that cannot work before any compute starts.

    config.model = train_config.model_section("tiny")
    config.train = train_config.train_section(num_steps=300, lr=1e-3, ...)
    train_config.validate(config)            # ConfigError("train.batch_size: ...")
"""
from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import ml_collections
from ml_collections import config_dict

from kareljax.data import batches, dataset_config
from kareljax.config_files import ConfigError, require
from kareljax.model.sizes import SIZES, ModelSize

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
SCHEDULES = ("linear", "as_run")
DATA_SOURCES = ("dataset", "fresh")
SIZE_FIELDS = ("d_model", "n_layers", "n_heads", "d_mlp", "rotary_dim", "max_len")


def model_section(size: str = "tiny", dtype: str = "float32") -> ml_collections.ConfigDict:
    """`size` names an entry of `kareljax.model.SIZES`; a field set here (not None) replaces that
    size's value (`--config.model.d_model=128`); `dtype` is the compute dtype (parameters and the
    optimizer stay float32)."""
    c = ml_collections.ConfigDict()
    c.size = size
    for name in SIZE_FIELDS:
        c[name] = config_dict.placeholder(int)
    c.dtype = dtype
    return c


def train_section(**values) -> ml_collections.ConfigDict:
    """Every training option at its default, with `values` replacing some."""
    c = ml_collections.ConfigDict()
    c.seed = 0                 # parameter init and data order (or fresh data) derive from it
    c.batch_size = 32          # sequences per optimizer step, over all devices and hosts
    c.grad_accum = 1           # micro-batches per step (each batch_size // grad_accum sequences)
    c.num_steps = 1000             # optimizer steps of the whole run
    c.lr = 1e-3                # peak learning rate
    c.warmup_steps = 100       # 'linear': lr rises linearly from 0 to `lr` over these steps
    # 'linear': warmup, then linear decay to 0 at `steps` (docs/spec.md §6, the intended schedule).
    # 'as_run': the original run's schedule (docs/spec.md §6 [D]): linear warmup over the first
    #   `as_run_warmup_fraction` of `steps` (48,000 of 80,000), then constant; no decay.
    c.schedule = "linear"
    c.as_run_warmup_fraction = 0.6
    c.weight_decay = 0.0       # AdamW (docs/spec.md §6): decoupled weight decay, betas, epsilon
    c.b1 = 0.9
    c.b2 = 0.999
    c.eps = 1e-8
    c.loss_on = "all"          # 'all' tokens of the example (the original) or only 'program'
    c.data_source = "dataset"  # 'dataset': the built TFDS split; 'fresh': generated on device
    c.checkpoint_every = 1000  # permanent checkpoints (kept for probe scans)
    c.keep_latest_every = 100  # rolling checkpoints for resuming (the last two are kept)
    c.log_every = 10           # metrics lines (JSON + TensorBoard)
    c.eval_every = 0           # decode and score val specs every N steps (0 = never); 1 process
    c.eval_examples = 256      # how many val specs (the first N)
    c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1})  # axis sizes, -1 = the rest
    # Warm start: a run directory (local or gs://) whose checkpoint's parameters begin this run
    # (its newest, or `init_from_step`); the optimizer, the step and the data start fresh. The
    # model sections must name the same shapes. Used only when this run has no checkpoint yet.
    c.init_from = ""
    c.init_from_step = config_dict.placeholder(int)
    for key, value in values.items():
        if key not in c:
            raise KeyError(f"train.{key} is not a training option")
        c[key] = value
    return c


def model_size(model: ml_collections.ConfigDict) -> ModelSize:
    """The ModelSize of a model section (its named size with any field overrides)."""
    if model.size not in SIZES:
        raise ConfigError(f"model.size: unknown size {model.size!r}; the sizes are "
                          f"{', '.join(SIZES)}")
    changes = {name: model[name] for name in SIZE_FIELDS if model.get(name) is not None}
    return dataclasses.replace(SIZES[model.size], **changes)


def dtype(model: ml_collections.ConfigDict):
    return DTYPES[model.dtype]


def _int(section, name: str, prefix: str, minimum: int) -> None:
    value = section[name]
    require(isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
             f"{prefix}.{name}", f"must be an integer >= {minimum}, got {value!r}")


def validate_model(model: ml_collections.ConfigDict, sequence_length: int | None = None) -> None:
    size = model_size(model)
    for name in SIZE_FIELDS:
        require(getattr(size, name) >= (0 if name == "rotary_dim" else 1), f"model.{name}",
                 f"must be positive, got {getattr(size, name)}")
    require(model.dtype in DTYPES, "model.dtype",
             f"must be one of {', '.join(DTYPES)}, got {model.dtype!r}")
    require(size.d_model % size.n_heads == 0, "model.n_heads",
             f"{size.n_heads} heads do not divide d_model {size.d_model}")
    require(size.rotary_dim % 2 == 0 and size.rotary_dim <= size.head_dim, "model.rotary_dim",
             f"must be even and at most the head dim {size.head_dim}, got {size.rotary_dim}")
    if sequence_length is not None:
        require(sequence_length <= size.max_len, "model.max_len",
                 f"the data's examples take {sequence_length} tokens, more than {size.max_len}")


def validate_train(train: ml_collections.ConfigDict) -> None:
    p = "train"
    for name in ("seed", "warmup_steps", "eval_every"):
        _int(train, name, p, 0)
    _int(train, "eval_examples", p, 1)
    for name in ("batch_size", "grad_accum", "num_steps", "checkpoint_every", "keep_latest_every",
                 "log_every"):
        _int(train, name, p, 1)
    require(train.batch_size % train.grad_accum == 0, "train.grad_accum",
             f"{train.grad_accum} micro-batches do not divide batch_size {train.batch_size}")
    require(train.warmup_steps <= train.num_steps, "train.warmup_steps",
             f"{train.warmup_steps} is more than num_steps ({train.num_steps})")
    require(train.schedule in SCHEDULES, "train.schedule",
             f"must be one of {', '.join(SCHEDULES)}, got {train.schedule!r}")
    require(0 < train.as_run_warmup_fraction <= 1, "train.as_run_warmup_fraction",
             f"must be in (0, 1], got {train.as_run_warmup_fraction}")
    require(math.isfinite(train.lr) and train.lr > 0, "train.lr",
             f"must be a positive number, got {train.lr}")
    require(train.weight_decay >= 0, "train.weight_decay",
             f"must be >= 0, got {train.weight_decay}")
    for name in ("b1", "b2"):
        require(0 <= train[name] < 1, f"train.{name}", f"must be in [0, 1), got {train[name]}")
    require(train.eps > 0, "train.eps", f"must be > 0, got {train.eps}")
    require(train.loss_on in batches.LOSS_ON, "train.loss_on",
             f"must be one of {', '.join(batches.LOSS_ON)}, got {train.loss_on!r}")
    require(train.data_source in DATA_SOURCES, "train.data_source",
             f"must be one of {', '.join(DATA_SOURCES)}, got {train.data_source!r}")
    require(set(train.mesh.keys()) == {"data", "fsdp"}, "train.mesh",
             f"must have exactly the axes data and fsdp, got {sorted(train.mesh.keys())}")
    for axis in ("data", "fsdp"):
        size = train.mesh[axis]
        require(isinstance(size, int) and (size == -1 or size >= 1), f"train.mesh.{axis}",
                 f"must be -1 (all remaining devices) or >= 1, got {size!r}")
    require(not (train.mesh.data == -1 and train.mesh.fsdp == -1), "train.mesh",
             "at most one axis may be -1")


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ConfigError naming the first option of `config` (data, model, train, and probe
    where there is one) that cannot work. Device-dependent checks (batch vs. mesh size) happen
    when the mesh is built."""
    for section in ("data", "model", "train"):
        require(section in config, section, "the config has no such section")
    if "probe" in config:
        from kareljax.probe import options
        options.validate_probe(config.probe)
    dataset_config.validate(config.data)
    layout = dataset_config.layout(config.data)
    validate_model(config.model, layout.max_length)
    validate_train(config.train)
    if config.train.data_source == "fresh":
        require(not dataset_config.program_options(config.data).has_conditionals,
                 "train.data_source", "'fresh' draws straight-line programs only; this data "
                 "config has conditionals: use 'dataset'")
