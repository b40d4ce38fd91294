"""Why the untrained model reads the starting pose (issue 31, fix 7): how much turning one shown
robot moves the untrained model's hidden state at `run{`, by the robot's place in the prompt.

For the step-0 model of a config (built from a seed as `kareljax.train.load.untrained_model`
builds a run's, no run directory needed), at `n_layers` blocks: the state the probes see at
`run{` (the mean over the n_layers + 1 hidden states: the embedding, blocks 1 .. n-1, the last
block after the final norm; `kareljax.probe.collect.sequence_states`), then the same state with
one shown grid's robot turned a quarter (its glyph `HERO0 + f` -> `HERO0 + (f + 1) % 4`). The
measure of a grid is ||state' - state|| / ||state||, the mean over specs; `ratio` is Input0's
over Output4's (the first and the last robot glyph of the prompt). `none` is the same with the
robot turned by 0 (nothing changed): 0 by construction.

    .venv/bin/python docs/results/untrained_bias/measure.py            # JSON lines on stdout
    .venv/bin/python docs/results/untrained_bias/measure.py --specs 16 --seeds 1 --layers 4  # fast

The specs are the first `--specs` of the config's test split, generated in memory
(`kareljax.data.generate.generate_split`; no dataset on disk). Only the prompt enters the
forward pass: attention is causal, so `run{`'s state does not depend on the program.
"""
from __future__ import annotations

import argparse
import functools
import json
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from kareljax import config_files
from kareljax.data import dataset_config, generate, tokens
from kareljax.data.batches import example_tokens
from kareljax.model.transformer import forward_with_states
from kareljax.train import optimizer, state as state_lib

CONFIG = "configs/small.py"


def untrained_params(config: ml_collections.ConfigDict, n_layers: int, seed: int):
    """(graphdef, params) of the config's model with `n_layers` blocks at initialisation from
    train seed `seed` (the parameters `kareljax.train.load.untrained_model` gives a run)."""
    model_cfg = ml_collections.ConfigDict(config.model.to_dict())
    model_cfg.n_layers = n_layers
    tx = optimizer.make(config.train)[0]
    params = jax.jit(lambda k: state_lib.init_fn(model_cfg, tx)(k)["params"])(
        state_lib.params_key(seed))
    return state_lib.graphdef(model_cfg), params


def test_specs(config: ml_collections.ConfigDict, n: int,
               chunk_size: int = generate.CHUNK_PROGRAMS) -> np.ndarray:
    """int32 [n, prompt_length]: the prompts (through `run{`) of the test split's first n specs
    (the split generated in memory; `chunk_size` as in `generate_split`: the default gives the
    specs the TFDS split is built from)."""
    layout = dataset_config.layout(config.data)
    records = next(generate.generate_split(config.data, "test", chunk_size))
    if len(records["length"]) < n:
        raise ValueError(f"the test split's first chunk holds {len(records['length'])} specs, "
                         f"fewer than {n}")
    ids = example_tokens(layout, records["inputs"][:n], records["outputs"][:n],
                         records["program"][:n])
    return np.asarray(ids[:, :layout.prompt_length], np.int32)


def turn_robot(prompts: np.ndarray, positions: np.ndarray, by: int = 1) -> np.ndarray:
    """`prompts` with the robot glyph among `positions` (one grid's cells) turned `by` quarters
    in every spec; exactly one robot per grid, else ValueError."""
    cells = prompts[:, positions]
    hero = (cells >= tokens.HERO0) & (cells < tokens.HERO0 + 4)
    if not (hero.sum(1) == 1).all():
        raise ValueError("a grid without exactly one robot glyph")
    turned = tokens.HERO0 + (cells - tokens.HERO0 + by) % 4
    out = prompts.copy()
    out[:, positions] = np.where(hero, turned, cells)
    return out


@functools.partial(jax.jit, static_argnames=("graphdef", "position"))
def _states_at(graphdef, params, prompts, position: int) -> jax.Array:
    """[layers, B, d]: `collect.sequence_states(..., per_layer=True)` at one position (the
    residual stream of `forward_with_states`, sliced inside the jit)."""
    return forward_with_states(nnx.merge(graphdef, params), prompts)[1][:, :, position]


def _states(graphdef, params, prompts: np.ndarray, position: int, batch: int) -> np.ndarray:
    """float [layers, n, d]: every hidden state at `position` (per layer; the mean over layers,
    the probes' state, is taken by the caller)."""
    out = []
    for start in range(0, len(prompts), batch):
        s = _states_at(graphdef, params, jnp.asarray(prompts[start:start + batch]), position)
        out.append(np.asarray(s, np.float64))
    return np.concatenate(out, 1)


def perturbation_ratio(config: ml_collections.ConfigDict, n_layers: int, seed: int,
                       specs: np.ndarray, batch: int = 128) -> dict:
    """How far turning each shown robot moves the untrained model's `run{` state.

    `specs`: int32 [n, prompt_length] prompts (`test_specs`). Returns {"input": [n_shown],
    "output": [n_shown]}: the mean over specs of ||state' - state|| / ||state|| for grid i's
    robot turned a quarter (state = the mean over the n_layers + 1 hidden states at `run{`);
    "by_position": the same in prompt order (Input0, Output0, Input1, ...); "none": the same
    with nothing turned (0); "ratio": input[0] / output[-1]; "ratio_median": the median over
    specs of that ratio; "layer_ratio": the ratio per hidden state 1 .. n_layers (blocks 1 ..
    n-1, the final-normed output; the embedding at `run{` does not see the grids)."""
    layout = dataset_config.layout(config.data)
    specs = np.asarray(specs, np.int32)
    if specs.shape[1] != layout.prompt_length:
        raise ValueError(f"specs have {specs.shape[1]} tokens; the prompt has "
                         f"{layout.prompt_length}")
    graphdef, params = untrained_params(config, n_layers, seed)
    cells = layout.cell_positions().reshape(layout.n_shown, 2, -1)
    at = layout.program_start
    base = _states(graphdef, params, specs, at, batch)            # [L, n, d]
    base_mean = base.mean(0)
    norm = np.linalg.norm(base_mean, axis=-1)

    def change(prompts):
        states = _states(graphdef, params, prompts, at, batch)
        mean = np.linalg.norm(states.mean(0) - base_mean, axis=-1) / norm
        layer = (np.linalg.norm(states - base, axis=-1)
                 / np.maximum(np.linalg.norm(base, axis=-1), 1e-30))
        return mean, layer                                         # [n], [L, n]

    grids = {(i, o): change(turn_robot(specs, cells[i, o])) for i in layout.shown for o in (0, 1)}
    first, last = grids[(0, 0)], grids[(layout.n_shown - 1, 1)]
    return {"n_layers": n_layers, "seed": seed, "specs": len(specs),
            "input": [float(grids[(i, 0)][0].mean()) for i in layout.shown],
            "output": [float(grids[(i, 1)][0].mean()) for i in layout.shown],
            "by_position": [float(grids[(i, o)][0].mean()) for i in layout.shown for o in (0, 1)],
            "none": float(change(turn_robot(specs, cells[0, 0], by=0))[0].mean()),
            "ratio": float(first[0].mean() / last[0].mean()),
            "ratio_median": float(np.median(first[0] / last[0])),
            "layer_ratio": [float(a) for a in first[1][1:].mean(1) / last[1][1:].mean(1)]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--specs", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3, help="train seeds 0 .. seeds-1")
    parser.add_argument("--layers", default="4,20", help="comma-separated block counts")
    args = parser.parse_args(argv)
    config = config_files.load(args.config)
    t0 = time.time()
    specs = test_specs(config, args.specs)
    for n_layers in (int(x) for x in args.layers.split(",")):
        rows = []
        for seed in range(args.seeds):
            row = perturbation_ratio(config, n_layers, seed, specs)
            rows.append(row)
            print(json.dumps({k: (np.round(v, 5).tolist() if isinstance(v, (list, float)) else v)
                              for k, v in row.items()}), flush=True)
        mean = lambda key: np.mean([r[key] for r in rows], 0)  # noqa: E731
        print(json.dumps({"summary": True, "n_layers": n_layers, "seeds": args.seeds,
                          "specs": args.specs, "ratio": round(float(mean("ratio")), 3),
                          "ratio_min": round(min(r["ratio"] for r in rows), 3),
                          "ratio_max": round(max(r["ratio"] for r in rows), 3),
                          "input": np.round(mean("input"), 5).tolist(),
                          "output": np.round(mean("output"), 5).tolist(),
                          "input_over_output4": np.round(mean("input") / mean("output")[-1],
                                                         3).tolist(),
                          "by_position": np.round(mean("by_position"), 5).tolist(),
                          "monotone": bool((np.diff(mean("by_position")) <= 0).all()),
                          "layer_ratio": np.round(mean("layer_ratio"), 3).tolist(),
                          "seconds": round(time.time() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
