"""configs/small.py on an 8x8 interior (a 10x10 world with its border ring, larger than the
paper's 8x8 world with a 6x6 interior, docs/spec.md §1), programs of 1-5 actions. Sequences are 668 tokens
instead of 188 (0.94 s/step alone on the 2-core VM), so the run is 5,000 steps, what fits in
~80 minutes; results in docs/results/.

    kareljax train --config configs/small_8x8.py --workdir runs/small_8x8
"""
import pathlib

import ml_collections

from kareljax import config_files

NUM_STEPS = 5_000


def get_config() -> ml_collections.ConfigDict:
    small = config_files.load_module(str(pathlib.Path(__file__).with_name("small.py")))
    return small.get_config(world_size=10, num_steps=NUM_STEPS, checkpoints=5, evals=10)
