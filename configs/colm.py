"""The COLM 2024 dataset: exactly 15 moves and turns (uniform weights, no markers), with a real train split.

The data values live in kareljax/data/presets.py (`presets.colm`), which the TFDS builder `karel`
shares. Override any of them with --config.data.NAME=VALUE.
"""
import ml_collections

from kareljax.data import presets


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.data = presets.colm()
    return config
