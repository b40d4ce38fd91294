"""CPU-scale science run (issue 7), results in docs/results/: 14,400 steps took 129 min of wall time
on the 2-core VM (~0.48 s/step alone) and reached 78.8 % correct on the test split (9,600 steps:
71.6 %); babbling at the constant-program floors for the first ~2,700 steps, then a steady rise.

World 4x4 interior, programs of length 1-5 (all lengths trained on), fresh programs generated on
device every step (no epoch repeats); a 0.8 M-parameter model (d_model 128, 4 layers, 2 heads of
64); batch 16, AdamW lr 1e-3 with 200 warm-up steps and linear decay to 0, loss on every token.
Checkpoints every 1/8 of the run for the probe scan; val accuracy on 256 specs every 1/16.

    kareljax reproduce --config configs/small.py            # -> runs/small/report/report.md
"""
import ml_collections

from kareljax.data import presets
from kareljax.train import train_config

NUM_STEPS = 14_400


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    data = presets.icml_cpu()
    data.min_length, data.max_length, data.train_lengths = 1, 5, ()
    config.data = data
    model = train_config.model_section("small", dtype="float32")
    model.d_model, model.n_layers, model.n_heads, model.d_mlp = 128, 4, 2, 512
    config.model = model
    config.train = train_config.train_section(
        seed=0, batch_size=16, grad_accum=1, num_steps=NUM_STEPS, lr=1e-3, warmup_steps=200,
        schedule="linear", data_source="fresh", checkpoint_every=NUM_STEPS // 8,
        keep_latest_every=200, log_every=50, eval_every=NUM_STEPS // 16, eval_examples=256)
    config.probe = ml_collections.ConfigDict({
        "train_limit": 3000, "alts": "8,11", "seeds": 1, "profile": "cpu", "fit_steps": 100})
    return config
