"""Programs with if/ifelse, lengths 1-10 (beyond the paper's experiments).

The data values live in kareljax/data/presets.py (`presets.cond`), which the TFDS builder `karel`
shares. Override any of them with --config.data.NAME=VALUE.
"""
import ml_collections

from kareljax.data import presets


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.data = presets.cond()
    return config
