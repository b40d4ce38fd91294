"""Issue 31, experiment E3: the original's long programs at CPU scale.

configs/quick.py's model and worlds (3x3 interior, d_model 128, 4 layers, 2 heads, batch 16,
fresh data, loss on every token), trained on programs of 6-10 actions only (the original's
filter, `data.train_lengths`) and evaluated on all lengths 1-10 (val and test draw every
length). The run begins from quick's trained parameters (`train.init_from`, its newest
checkpoint; optimizer and data start fresh), so run configs/quick.py first, or start from
scratch with `--config.train.init_from=`. The scan's step 0 is still the untrained model of the
run's seed; the warm start itself is quick's last checkpoint, which quick's own scan covers.

The probes read the model's own programs (the collection's default) at offsets -2 ... +2: long
programs leave samples at every offset, so the paper's current / next / next-next rows all exist.

    kareljax reproduce --config configs/quick.py              # the warm start: runs/quick
    kareljax reproduce --config configs/long_programs.py      # -> runs/long_programs/
"""
import pathlib

import ml_collections

from kareljax import config_files
from kareljax.probe import labels
from kareljax.probe.options import probe_section
from kareljax.train import train_config

NUM_STEPS = 8000


def get_config() -> ml_collections.ConfigDict:
    """quick.py's model and worlds; train on 6-10 actions, evaluate on 1-10; warm start."""
    quick = config_files.load_module(str(pathlib.Path(__file__).with_name("quick.py")))
    config = quick.get_config()
    data = config.data
    data.min_length, data.max_length, data.train_lengths = 1, 10, (6, 7, 8, 9, 10)
    data.max_program_tokens = data.max_length + 2     # `run{` + up to 10 actions + `}`
    config.train = train_config.train_section(
        **{**config.train.to_dict(), "num_steps": NUM_STEPS, "lr": 1e-3, "warmup_steps": 200,
           "checkpoint_every": NUM_STEPS // 4, "keep_latest_every": NUM_STEPS // 4,
           "eval_every": NUM_STEPS // 10, "init_from": "runs/quick"})
    config.probe = probe_section(
        collect={"train_limit": 2000, "alts": "8,11"},
        scan={"seeds": 1, "offsets": (-2, -1, 0, 1, 2), "tasks": labels.TASK_NAMES,
              "depths": ("linear", "mlp1"),
              "fit": {"steps": 1000, "batch_size": 256, "eval_every": 250}})
    return config
