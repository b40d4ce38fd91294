"""The quick main job, the README's first command: the whole pipeline in about 7 minutes on a
2-core CPU, with a model that leaves the constant-program floors.

small.py's model and optimiser on a 3x3 interior (5x5 world with the border, 109-token sequences
instead of 179), programs of 1-3 actions, fresh data, 2,400 steps of 16 (lr 2e-3, b2 0.98, 200
warm-up steps, linear decay, loss on every token); 4 checkpoints (0, 800, 1,600, 2,400) for the
probe scan at offsets -1 and 0 (the only ones programs of 1-3 actions give samples at).

Measured on this project's 2-core AMD EPYC VM, 2026-12-07, alone (load 0.4 at the start), from no
dataset and no run directory: `kareljax reproduce --config configs/quick.py` took 7 min 19 s
(train 328 s with the dataset build, 0.13 s/step; eval 11 s, collect 74 s, scan 22 s, report 2 s).
Test (999 specs): 36.8 % correct, 35.5 % correct_gen, against the floors 18.7 % (no-op) and
22.2 % (best constant program, `move()`); 0.7 % distinct programs, mean generated length 1.04
actions: it has learned to pick the right single action for the grids, not yet to write longer
programs. Val correct (256 specs): 13.3 % at steps 240-480 (one program), 20.7 % at 720, 28.9 %
at 1,200, 37.5 % at 2,160, 35.2 % at 2,400; the report's checkpoints: 22.2 % (step 800), 30.9 %
(1,600), 36.8 % (2,400). Seed 1 (`--config.train.seed=1`, on a loaded host): test 33.2 % correct,
after babbling to step 1,400. Loss on program tokens only (`loss_on="program"`) was still
babbling at step 1,250 when loss on every token had left it at ~1,000.

    kareljax reproduce --config configs/quick.py            # -> runs/quick/report/report.md
"""
import ml_collections

from kareljax.data import presets
from kareljax.probe.options import probe_section
from kareljax.train import train_config

NUM_STEPS = 2400


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    data = presets.icml_cpu()
    data.world_height = data.world_width = 5          # 3x3 interior
    data.min_length, data.max_length, data.train_lengths = 1, 3, ()
    data.max_program_tokens = data.max_length + 2     # `run{` + up to 3 actions + `}`
    data.num_val = 500                                # collect decodes every val spec per checkpoint
    config.data = data
    model = train_config.model_section("small", dtype="float32")
    model.d_model, model.n_layers, model.n_heads, model.d_mlp = 128, 4, 2, 512
    config.model = model
    # keep_latest_every = checkpoint_every: no extra rolling checkpoint for collect to decode.
    config.train = train_config.train_section(
        seed=0, batch_size=16, grad_accum=1, num_steps=NUM_STEPS, lr=2e-3, b2=0.98,
        warmup_steps=200, schedule="linear", data_source="fresh",
        checkpoint_every=NUM_STEPS // 3, keep_latest_every=NUM_STEPS // 3, log_every=50,
        eval_every=NUM_STEPS // 10, eval_examples=256)
    # Offsets -1 and 0 only: a sample needs every offset of the scan inside its program, and the
    # paper's -2 ... +2 leave programs of 1-3 actions without samples (configs/small.py).
    config.probe = probe_section(
        collect={"train_limit": 300, "alts": "8"},
        scan={"seeds": 1, "offsets": (-1, 0), "fit": {"steps": 40, "eval_every": 20}})
    return config
