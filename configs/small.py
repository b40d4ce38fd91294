"""CPU science (placeholder until the probe issues size it): the icml_cpu dataset (4x4 interior,
20,000 programs), the small model (~1.8 M parameters), 10,000 steps of 32 sequences (~60 M
tokens). About 3 s a step on a 2-core CPU (~2,000 tokens/s): roughly 8 hours.

    kareljax train --config configs/small.py --workdir runs/small
"""
import ml_collections

from kareljax.data import presets
from kareljax.train import train_config


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.data = presets.icml_cpu()
    config.model = train_config.model_section("small", dtype="float32")
    config.train = train_config.train_section(
        seed=0, batch_size=32, grad_accum=1, num_steps=10_000, lr=1e-3, warmup_steps=500,
        schedule="linear", checkpoint_every=500, keep_latest_every=100, log_every=50)
    return config
