"""CPU-scale science run (issue 7), results in docs/results/: 12,000 steps in 38.5 min of wall time
on the 2-core AMD EPYC VM (0.19 s/step alone; hosts of earlier sessions ran the same model at
0.46-0.50 s/step, ~100 min) reached 83.2 % correct on the 1,000 test specs (val 81 %), from the
constant-program floors (no-op 10.9 %, best constant 15.4 %) in the first ~2,000 steps.

World 4x4 interior, programs of length 1-5 (all lengths trained on), fresh programs generated on
device every step (no epoch repeats); a 0.8 M-parameter model (d_model 128, 4 layers, 2 heads of
64); batch 16, AdamW lr 2e-3 (b2 0.98) with 400 warm-up steps and linear decay to 0, loss on every
token (lr 1e-3, b2 0.999, 200 warm-up steps over 14,400 steps gave 78.8 %). Checkpoints every 1/8
of the run for the probe scan; val accuracy on 256 specs every 1/16.

    kareljax reproduce --config configs/small.py            # -> runs/small/report/report.md
"""
import ml_collections

from kareljax.data import presets
from kareljax.probe.options import probe_section
from kareljax.train import train_config

NUM_STEPS = 12_000


def get_config(world_size: int = 6, num_steps: int = NUM_STEPS, checkpoints: int = 8,
               evals: int = 16) -> ml_collections.ConfigDict:
    """This run on a `world_size` x `world_size` world (border ring included) for `num_steps`
    steps, with `checkpoints` permanent checkpoints and `evals` val evaluations spread over the
    run; configs/small_6x6.py, small_8x8.py and small_24k.py call it with their world and
    schedule."""
    config = ml_collections.ConfigDict()
    data = presets.icml_cpu()
    data.min_length, data.max_length, data.train_lengths = 1, 5, ()
    data.world_height = data.world_width = world_size
    config.data = data
    model = train_config.model_section("small", dtype="float32")
    model.d_model, model.n_layers, model.n_heads, model.d_mlp = 128, 4, 2, 512
    config.model = model
    config.train = train_config.train_section(
        seed=0, batch_size=16, grad_accum=1, num_steps=num_steps, lr=2e-3, b2=0.98, warmup_steps=400,
        schedule="linear", data_source="fresh", checkpoint_every=num_steps // checkpoints,
        keep_latest_every=200, log_every=50, eval_every=num_steps // evals, eval_examples=256)
    # Offsets -1 and 0 only (the current state and the next): a sample needs every offset of
    # the scan inside its program, and with programs of ~2 actions the paper's -2 ... +2 kept
    # only 5-action programs (docs/results).
    config.probe = probe_section(
        collect={"train_limit": 3000, "alts": "8,11"},
        scan={"seeds": 1, "offsets": (-1, 0), "fit": {"steps": 100, "eval_every": 50}})
    return config
