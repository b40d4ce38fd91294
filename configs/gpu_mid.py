"""A mid-size model on the paper's world (8x8 with its border ring, a 6x6 interior) for a short
GPU run that shows generation accuracy leaving its floor (issue 7 point 3;
benchmarks/device_check.sh runs it). Not yet run on a GPU: the sizes and the learning rate are
a first choice, not tuned.

Programs of 1-5 actions, fresh on device every step (on the CPU, configs/small_6x6.py's 0.8 M
parameters reached 81.8 % on these specs in 14,000 steps of 16); here a ~25 M-parameter model
(d_model 512, 8 layers of 8 heads of 64, d_mlp 2048) in bfloat16, batches of 128 (~50,000 token
slots a step), AdamW at 5e-4 with 300 warm-up steps and linear decay to 0 at 4,000 steps; val
accuracy on 256 specs every 250 steps.

    kareljax train --config configs/gpu_mid.py --workdir runs/gpu_mid
"""
import ml_collections

from kareljax.data import presets
from kareljax.train import train_config

NUM_STEPS = 4_000


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    data = presets.icml()
    data.min_length, data.max_length, data.train_lengths = 1, 5, ()
    data.num_train, data.num_val, data.num_test = 5_000, 1_000, 1_000   # training data is fresh
    config.data = data
    model = train_config.model_section("small", dtype="bfloat16")
    model.d_model, model.n_layers, model.n_heads, model.d_mlp = 512, 8, 8, 2048
    config.model = model
    config.train = train_config.train_section(
        seed=0, batch_size=128, num_steps=NUM_STEPS, lr=5e-4, b2=0.98, warmup_steps=300,
        schedule="linear", data_source="fresh", checkpoint_every=NUM_STEPS // 4,
        keep_latest_every=250, log_every=50, eval_every=250, eval_examples=256)
    return config
