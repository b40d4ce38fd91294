"""configs/small.py on an 8x8 interior (a 10x10 world with its border ring, larger than the
paper's 8x8 world with a 6x6 interior, SPEC §1), programs of 1-5 actions. Sequences are 668 tokens
instead of 188 (0.94 s/step alone on the 2-core VM), so the run is 5,000 steps, what fits in
~80 minutes; results in docs/results/.

    kareljax train --config configs/small_8x8.py --workdir runs/small_8x8
"""
import pathlib

import ml_collections

from kareljax import config_files

NUM_STEPS = 5_000


def get_config() -> ml_collections.ConfigDict:
    config = config_files.load(str(pathlib.Path(__file__).with_name("small.py")))
    config.data.world_height = config.data.world_width = 10
    train = config.train
    train.num_steps = NUM_STEPS
    train.checkpoint_every, train.eval_every = NUM_STEPS // 5, NUM_STEPS // 10
    return config
