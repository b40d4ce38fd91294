"""Issue 31, experiment E2: a positive control trained in execution order.

The same model and worlds as configs/quick.py (3x3 interior, d_model 128, 4 layers, 2 heads, batch
16, lr 2e-3, b2 0.98, linear decay, fresh data, loss on every token), but each sequence is the
shown inputs, then the program, then the outputs (`data.order="execution"`, docs/tokens.md):

    Examples: Input0 <grid> ... Input4 <grid> Code: run{ <program> } <pad>... Output0 <grid> ...

so writing the outputs means running the program. Programs of 1-5 actions (quick's 1-3 leave few
samples at offsets -1 and 0), 6,000 steps, 8 checkpoints. `kareljax eval` reports the output
accuracy (`correct` = every cell of the 5 shown output grids right; `eval/execution_order.py`),
and the trainer logs it on 256 val specs every 500 steps. `collect` feeds the reference programs
and keeps the states producing their tokens exactly as for synthesis, so `scan` and `report` read
the state from them as for any run: offsets -1 and 0, alternatives 8 and 11, the grid-frame tasks
with the robot-frame and starting-pose ones, step 0 the untrained baseline. If the state is read well above the synthesis runs' and rises with output
accuracy, the pipeline detects the effect where the task needs it.

Measured on the 2-core VM, 2026-12-07, shared with other jobs (load 5-10): 1,200 steps of this
config (lr decayed to 0 at 1,200) took 12 min (0.6 s/step; quick's 0.13 s/step was measured
alone) and reached 31.6 % correct (1,000 test specs; 50 % of grids, 91 % of cells; copying the
inputs scores 11 %); collecting a checkpoint took 50 s of CPU (~110 s of wall time at that load),
scanning one ~40 s. The whole run: ~35 min alone (train ~15, collect ~8, scan ~5, eval and
report ~2), about twice that on a loaded host.

    kareljax reproduce --config configs/control_execution.py   # -> runs/control_execution/
"""
import pathlib

import ml_collections

from kareljax import config_files
from kareljax.probe import labels
from kareljax.probe.options import probe_section
from kareljax.train import train_config

NUM_STEPS = 6000


def get_config() -> ml_collections.ConfigDict:
    """configs/quick.py's model and worlds, in execution order, programs of 1-5 actions."""
    quick = config_files.load_module(str(pathlib.Path(__file__).with_name("quick.py")))
    config = quick.get_config()
    data = config.data
    data.min_length, data.max_length = 1, 5
    data.max_program_tokens = data.max_length + 2     # `run{` + up to 5 actions + `}`
    data.order = "execution"
    # keep_latest_every = checkpoint_every: no extra rolling checkpoint for collect to read.
    config.train = train_config.train_section(
        **{**config.train.to_dict(), "num_steps": NUM_STEPS, "warmup_steps": 400,
           "checkpoint_every": NUM_STEPS // 8, "keep_latest_every": NUM_STEPS // 8,
           "eval_every": NUM_STEPS // 12})
    config.probe = probe_section(
        collect={"train_limit": 2000, "alts": "8,11"},
        scan={"seeds": 1, "offsets": (-1, 0), "tasks": labels.TASK_NAMES,
              "depths": ("linear", "mlp1"),
              "fit": {"steps": 500, "batch_size": 256, "eval_every": 250}})
    return config
