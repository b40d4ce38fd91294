"""The ICML 2024 run (docs/spec.md §6): dataset `karel_noloops_nocond` (straight-line programs of 1-10
actions, 1,000,000 / 10,000 / 10,000 programs; the LM trains on lengths 6-10), a randomly
initialised CodeGen-350M-mono-shaped model, AdamW at peak lr 5e-6 with 6,000 warmup steps and
linear decay to 0 at 80,000 steps, seed 8, a checkpoint every 2,000 steps. GPU/TPU work.

Tokens per step: the original packed 16 x 2048 = 32,768 tokens per step. kareljax puts one
example per sequence (docs/spec.md §5 [D]): an icml example is 388 token slots (~382 real
tokens), so 84 sequences (32,592 slots) would match it most closely, but 84 does not split over
8 or 16 devices; the config ships 80 sequences (31,040 slots, 5.3 % fewer tokens than the
original), which every common device count (1, 2, 4, 8, 16) divides (docs/decisions.md). Raise
train.grad_accum when a step does not fit in memory; `kareljax plan --config configs/icml.py
--target v5e-8 ...` says whether it does. The compute dtype is bfloat16 (parameters and AdamW
state in float32); --config.model.dtype=float32 for full precision.
--config.train.schedule=as_run gives the original run's schedule (warmup over 60 % of the steps,
no decay; docs/spec.md §6 [D]).

The probe section scans at docs/spec.md §9's budget (the `paper` profile) with 5 seeds, on
50,000 train specs and every alternative semantics the report compares.

The data values live in kareljax/data/presets.py (`presets.icml`), which the TFDS builder `karel`
shares. Override any value with --config.SECTION.NAME=VALUE.
"""
import ml_collections

from kareljax.data import presets
from kareljax.probe.options import probe_section
from kareljax.train import train_config


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.data = presets.icml()
    config.model = train_config.model_section("icml", dtype="bfloat16")
    config.train = train_config.train_section(
        seed=8, batch_size=80, grad_accum=1, num_steps=80_000, lr=5e-6, warmup_steps=6_000,
        schedule="linear", checkpoint_every=2_000, keep_latest_every=500, log_every=50)
    config.probe = probe_section("paper", scan={"seeds": 5})
    return config
