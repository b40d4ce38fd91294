"""The phases figure of docs/results ("The phases, measured"): from one training run's periodic
val evaluations, generation accuracy and the share of distinct programs the model writes for the
same val specs (one program for every spec while it babbles), beside the reference programs'
share and the training loss.

    python docs/results/small_phases/plot_phases.py TRAIN_WORKDIR OUT.png
    # e.g. runs/small_phases docs/results/small_phases/phases.png

TRAIN_WORKDIR is a `kareljax train` run with `train.eval_every` set (metrics.jsonl holds
val_correct and val_distinct); the floors come from its `kareljax eval --split test` summary when
there is one. Prints the evaluations as JSON lines (step, loss, val correct, distinct programs).
"""
import json
import os
import sys

import matplotlib
import numpy as np

from kareljax.data import pipeline
from kareljax.eval import diversity
from kareljax.probe import report_data
from kareljax.train import load

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def figure(workdir: str, out: str) -> None:
    config = load.run_config(workdir)
    loss, evals, _ = report_data.read_metrics(os.path.join(workdir, report_data.METRICS_FILE))
    evals = sorted((e for e in evals if "val_distinct" in e), key=lambda e: e["step"])
    specs = config.train.eval_examples
    references = pipeline.DatasetReader(config.data, "val").read(np.arange(specs))["program"]
    reference = diversity.distinct_fraction(references)
    floors = report_data.read_floors(workdir, [])
    steps = [e["step"] for e in evals]
    loss_at = dict(loss)
    for e in evals:
        print(json.dumps({"step": e["step"], "loss": round(loss_at.get(e["step"], np.nan), 4),
                          "val_correct": e["val_correct"],
                          "distinct_programs": round(e["val_distinct"] * specs)}))

    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True,
                             gridspec_kw={"height_ratios": [2.6, 2, 1.6]})
    ax = axes[0]
    ax.plot(steps, [100 * e["val_correct"] for e in evals], "o-", ms=3, label="correct (val)")
    ax.plot(steps, [100 * e["val_correct_gen"] for e in evals], "s--", ms=3,
            label="correct_gen (val)")
    if floors:
        ax.axhline(100 * floors["noop_floor"], color="tab:red", lw=0.8, ls=":",
                   label=f"no-op floor ({100 * floors['noop_floor']:.1f} %, test)")
        ax.axhline(100 * floors["best_constant"]["correct"], color="tab:red", lw=0.8, ls="--",
                   label=f"best constant program ({100 * floors['best_constant']['correct']:.1f}"
                         " %, test)")
    ax.set(ylabel="generation accuracy (%)", ylim=(-2, 102))
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[1]
    ax.plot(steps, [100 * e["val_distinct"] for e in evals], "^-", ms=3, color="tab:purple",
            label=f"the model's programs ({specs} val specs)")
    ax.axhline(100 * reference, color="tab:purple", lw=0.8, ls="-.",
               label=f"the reference programs ({100 * reference:.1f} %)")
    ax.set(ylabel="distinct programs\n(% of specs)", ylim=(-2, 102))
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[2]
    ax.plot([s for s, _ in loss], [v for _, v in loss], lw=0.8, color="tab:gray")
    ax.set(ylabel="training loss", xlabel="training step", yscale="log")
    fig.suptitle(f"{os.path.basename(os.path.normpath(workdir))}: generation accuracy and "
                 "program diversity over training")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    figure(*sys.argv[1:])
