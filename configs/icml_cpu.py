"""icml on a 4x4 interior (6x6 with the border), 20,000 / 1,000 / 1,000 programs: a CPU-sized variant.

The data values live in kareljax/data/presets.py (`presets.icml_cpu`), which the TFDS builder `karel`
shares. Override any of them with --config.data.NAME=VALUE.
"""
import ml_collections

from kareljax.data import presets


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.data = presets.icml_cpu()
    return config
