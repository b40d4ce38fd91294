"""Issue 31, experiment E1, "absent or unread?": the robot's starting pose per layer at prompt
positions, and plan probes on the model's own programs (`kareljax.probe.prompt_probes`).

For a run directory, at its last checkpoint and at step 0 (the untrained model from the run's
seed): decode the first `--train-specs` train specs and every val and test spec greedily, keep
every layer's state at Input0's robot cell, Output0's robot cell, `Code:`, `run{` and the states
producing the program's tokens, and train one probe per (layer, task), converged (`--fit-steps`
steps of `--batch`; val picks the evaluation, test scores it; each row has the train accuracy
and its rise over the second half, and the majority-label chance level):

- pose: example 0's starting facing (4 classes) and starting square (interior square index) at
  each prompt position;
- plan: from the state producing program token k the action at token k, k+1, k+2 (`next+0`, the
  token the state itself produces, is the control); from `run{`, action 1, 2, 3 and the whole
  plan (the first 3 token slots, each an action or none, all right at once).

Prints one JSON line per probe (and one per step with the programs' summary and the times),
writes `pose_by_layer.png` (test accuracy per layer, the first depth of `--figure-depth`, chance
dashed) and `plan.md` (the plan table) into `--out`.

    # runs/quick at its last checkpoint and step 0 (the figure and table land beside this file)
    .venv/bin/python docs/results/e1_prompt_probes/run.py --fit-steps 1000 --eval-every 250 \
        | tee docs/results/e1_prompt_probes/output.jsonl
    # another run (its --out folder is made first, so tee can write into it)
    mkdir -p docs/results/e1_control_synthesis && .venv/bin/python \
        docs/results/e1_prompt_probes/run.py --workdir /work/science/control_synthesis \
        --out docs/results/e1_control_synthesis | tee docs/results/e1_control_synthesis/output.jsonl
    # the figure and table again from a former output
    .venv/bin/python docs/results/e1_prompt_probes/run.py \
        --redraw docs/results/e1_prompt_probes/output.jsonl
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

import jax
import numpy as np

import kareljax
from kareljax.data import dataset_config
from kareljax.probe import fit, models, prompt_probes as pp

HERE = os.path.dirname(os.path.abspath(__file__))
DEPTH_NAMES = {"linear": "linear probe", "mlp1": "1-layer probe", "mlp2": "2-layer probe"}
LAYER_NAMES = "0 = embedding, 1 .. n-1 = blocks, n = last block after the final norm"


def _round(v):
    return round(v, 4) if isinstance(v, float) else v


def probe_step(run, step: int, specs: dict, args) -> list[dict]:
    """Every probe row of one checkpoint (0: untrained)."""
    t0 = time.time()
    model = run.model(step)
    layout = dataset_config.layout(run.config.data)
    programs = {s: run.decode(model, specs[s]) for s in pp.SPLITS}
    t_decode = time.time() - t0
    states = {s: pp.states(model, layout, specs[s], programs[s])["states"] for s in pp.SPLITS}
    t_states = time.time() - t0 - t_decode
    n_actions = (pp.action_ids(programs["test"]) >= 0).sum(1)
    summary = {"summary": "programs", "step": step, "workdir": run.workdir,
               "n_layers": int(states["train"].shape[1]) - 1,
               "specs": {s: len(programs[s]) for s in pp.SPLITS},
               "test_distinct": len({tuple(p) for p in programs["test"].tolist()}),
               "test_actions": {int(k): int(v) for k, v in
                                zip(*np.unique(n_actions, return_counts=True))},
               "decode_s": round(t_decode, 1), "states_s": round(t_states, 1)}
    print(json.dumps(summary), flush=True)
    kinds = {"pose": pp.pose_tasks(layout, specs), "plan": pp.plan_tasks(programs)}
    options = fit.FitOptions(steps=args.fit_steps, batch_size=args.batch,
                             eval_every=args.eval_every)
    rows = []
    for kind, tasks in kinds.items():
        for depth in args.depths.split(","):
            t1 = time.time()
            key = jax.random.key(args.seed)
            out = pp.probe(key, states, tasks, hidden=models.DEPTHS[depth], options=options)
            seconds = round(time.time() - t1, 1)
            for r in out:
                row = {"kind": kind, "step": step, "depth": depth,
                       **{k: _round(v) for k, v in r.items()}}
                rows.append(row)
                print(json.dumps(row), flush=True)
            print(json.dumps({"summary": "fit", "step": step, "kind": kind, "depth": depth,
                              "probes": len(out), "seconds": seconds}), flush=True)
    return rows


def figure(rows: list[dict], path: str, depth: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pose = [r for r in rows if r.get("kind") == "pose" and r["depth"] == depth]
    steps = sorted({r["step"] for r in pose}, reverse=True)
    tasks = ("facing", "position")
    titles = {"facing": "starting facing (4 classes)", "position": "starting square"}
    fig, axes = plt.subplots(len(steps), 2, figsize=(10, 3.4 * len(steps)), sharey=True,
                             squeeze=False)
    for i, step in enumerate(steps):
        for j, task in enumerate(tasks):
            ax = axes[i, j]
            chance = None
            for c, position in enumerate(pp.POSITIONS):
                sel = sorted((r for r in pose if r["step"] == step and r["task"] == task
                              and r["slot"] == position), key=lambda r: r["layer"])
                ax.plot([r["layer"] for r in sel], [100 * r["test_acc"] for r in sel], "-o",
                        color=f"C{c}", label=position)
                chance = sel[0]["chance"]
            ax.axhline(100 * chance, ls="--", color="grey", label="chance (majority)")
            ax.set(title=f"{'untrained (step 0)' if step == 0 else f'step {step}'}: "
                   f"{titles[task]}", ylim=(0, 105), xlabel="layer (0 = embedding)",
                   ylabel=f"test accuracy, {DEPTH_NAMES.get(depth, depth)} (%)")
            ax.set_xticks(sorted({r["layer"] for r in pose}))
            ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plan_table(rows: list[dict]) -> str:
    """Markdown: per step and depth, each plan task's test accuracy per layer, chance, samples."""
    plan = [r for r in rows if r.get("kind") == "plan"]
    layers = sorted({r["layer"] for r in plan})
    lines = []
    groups = collections.OrderedDict()
    for r in plan:
        groups.setdefault((r["step"], r["depth"]), []).append(r)
    for (step, depth), sel in sorted(groups.items(), key=lambda g: (-g[0][0], g[0][1])):
        lines += [f"**step {step}, {depth}** (test accuracy %, layers {LAYER_NAMES})", "",
                  "| task | state | " + " | ".join(f"L{layer}" for layer in layers)
                  + " | chance | train / test samples | train acc (rise), last layer |",
                  "|---|---|" + "---|" * (len(layers) + 3)]
        for task in dict.fromkeys(r["task"] for r in sel):
            by = {r["layer"]: r for r in sel if r["task"] == task}
            last = by[layers[-1]]
            cell = lambda v: "—" if v is None else f"{100 * v:.1f}"  # noqa: E731
            rise = ("—" if last["train_acc"] is None else
                    f"{100 * last['train_acc']:.1f} ({100 * last['train_acc_rise']:+.1f})")
            lines.append(f"| {task} | {'k' if last['slot'] == 'program' else 'run{'} | "
                         + " | ".join(cell(by[layer]["test_acc"]) for layer in layers)
                         + f" | {cell(last['chance'])} | {last['n_train']} / {last['n_test']} "
                         f"| {rise} |")
        lines.append("")
    return "\n".join(lines)


def write_outputs(rows: list[dict], out: str, depth: str) -> None:
    os.makedirs(out, exist_ok=True)
    figure(rows, os.path.join(out, "pose_by_layer.png"), depth)
    with open(os.path.join(out, "plan.md"), "w") as f:
        f.write(plan_table(rows))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="runs/quick")
    parser.add_argument("--steps", default="last,0",
                        help="comma-separated checkpoint steps ('last': the newest; 0: untrained)")
    parser.add_argument("--train-specs", type=int, default=3000)
    parser.add_argument("--eval-specs", type=int, default=None,
                        help="val and test specs each (default: the whole splits)")
    parser.add_argument("--fit-steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--depths", default="linear,mlp1")
    parser.add_argument("--figure-depth", default="mlp1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=HERE)
    parser.add_argument("--redraw", metavar="JSONL",
                        help="draw the figure and table from a former run's output, no probes")
    args = parser.parse_args(argv)
    if args.redraw:
        with open(args.redraw) as f:
            rows = [r for r in map(json.loads, f) if "summary" not in r]
        if not rows:
            raise SystemExit(f"{args.redraw}: no probe rows")
        write_outputs(rows, args.out, args.figure_depth)
        return
    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)
    run = kareljax.load_run(args.workdir)
    last = run.checkpoints()[-1]
    steps = [last if s == "last" else int(s) for s in args.steps.split(",")]
    specs = {"train": run.specs("train", limit=args.train_specs),
             "val": run.specs("val", limit=args.eval_specs),
             "test": run.specs("test", limit=args.eval_specs)}
    rows = []
    for step in steps:
        rows += probe_step(run, step, specs, args)
    depth = args.figure_depth if args.figure_depth in args.depths.split(",") else \
        args.depths.split(",")[0]
    write_outputs(rows, args.out, depth)
    print(json.dumps({"summary": "done", "workdir": args.workdir, "steps": steps,
                      "fit_steps": args.fit_steps, "batch": args.batch,
                      "seconds": round(time.time() - t0, 1)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
