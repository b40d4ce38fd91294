"""One accelerator-hour of the paper's science: training, collection and the probe scan in about
an hour on one TPU v5e chip (Colab's TPU runtime) or one H100, as `kareljax plan` puts it.

The paper's world (8x8 with the border ring, a 6x6 interior) and the original's training programs
(straight-line, lengths 6-10 trained on, 1-10 evaluated), generated fresh on the device every step;
a 25 M-parameter model (d_model 512, 8 layers of 8 heads of 64, d_mlp 2048) in bfloat16, batches
of 128 sequences (49,664 token slots) for STEPS steps, AdamW at 5e-4 (b2 0.98) with 1,000 warm-up
steps and linear decay; 10 permanent checkpoints. The probes: docs/spec.md §9's budget (the
`paper` profile, 10,000 steps of 1,024) on 10,000 train specs and the whole val and test splits,
with alternatives 8 and 11 and one seed.

    kareljax plan --config configs/accel_1h.py --target v5e-1 --target h100   # the hour, checked
    kareljax reproduce --config configs/accel_1h.py                           # on a TPU or GPU

The plan's times assume 40 % of the roofline (model FLOPs utilisation); docs/scale.md has the
numbers. On this 2-core CPU it would take days.
"""
import ml_collections

from kareljax.data import presets
from kareljax.probe.options import probe_section
from kareljax.train import train_config

STEPS = 24_000


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    data = presets.icml()
    data.num_train = 50_000          # training data is fresh; the train split feeds the probes
    config.data = data
    model = train_config.model_section("small", dtype="bfloat16")
    model.d_model, model.n_layers, model.n_heads, model.d_mlp = 512, 8, 8, 2048
    config.model = model
    config.train = train_config.train_section(
        seed=0, batch_size=128, num_steps=STEPS, lr=5e-4, b2=0.98, warmup_steps=1_000,
        schedule="linear", data_source="fresh", checkpoint_every=STEPS // 10,
        keep_latest_every=500, log_every=100, eval_every=STEPS // 20, eval_examples=256)
    config.probe = probe_section("paper", collect={"train_limit": 10_000, "alts": "8,11"},
                                 scan={"seeds": 1})
    return config
