"""CPU smoke test: the icml_cpu dataset (4x4 interior, 20,000 programs), the tiny model (~0.1 M
parameters), 200 steps of 32 sequences (~1.2 M tokens): a minute or two on a 2-core CPU.

    kareljax train --config configs/tiny.py --workdir runs/tiny [--config.train.num_steps=50 ...]
"""
import ml_collections

from kareljax.data import presets
from kareljax.probe.options import probe_section
from kareljax.train import train_config


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.data = presets.icml_cpu()
    config.model = train_config.model_section("tiny", dtype="float32")
    config.train = train_config.train_section(
        seed=0, batch_size=32, grad_accum=1, num_steps=200, lr=3e-3, warmup_steps=20,
        schedule="linear", checkpoint_every=100, keep_latest_every=25, log_every=10)
    # `kareljax reproduce`: what to collect for the probes and how hard to scan.
    config.probe = probe_section(collect={"train_limit": 1000}, scan={"seeds": 1})
    return config
