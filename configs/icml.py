"""The ICML 2024 dataset (`karel_noloops_nocond`): straight-line programs of 1-10 actions, 1,000,000 / 10,000 / 10,000 programs; the LM trains on lengths 6-10.

The data values live in kareljax/data/presets.py (`presets.icml`), which the TFDS builder `karel`
shares. Override any of them with --config.data.NAME=VALUE.
"""
import ml_collections

from kareljax.data import presets


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.data = presets.icml()
    return config
