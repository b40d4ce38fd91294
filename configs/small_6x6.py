"""configs/small.py on the paper's world size: 8x8 with its border ring, a 6x6 interior (docs/spec.md §1),
programs of 1-5 actions. Sequences are 388 tokens instead of 188. Results in docs/results/: 14,000
steps in 97 min of wall time on the 2-core VM (0.38 s/step median alone; the first ~25 min shared
the CPU with probe jobs) reached 81.8 % correct on the test split (8,000 steps: 74.1 % in 55 min).

    kareljax train --config configs/small_6x6.py --workdir runs/small_6x6
"""
import pathlib

import ml_collections

from kareljax import config_files

NUM_STEPS = 14_000


def get_config() -> ml_collections.ConfigDict:
    small = config_files.load_module(str(pathlib.Path(__file__).with_name("small.py")))
    return small.get_config(world_size=8, num_steps=NUM_STEPS)
