"""The grid-frame figure of docs/results ("Seven times the probe data"): what probes read of the
paper's state tasks (current state, original semantics) from the untrained model and from the
trained checkpoints of one run, against chance, and against generation accuracy.

    python docs/results/small_24k/plot_grid_frame.py PROBE_WORKDIR TRAIN_WORKDIR OUT.png
    # e.g. runs/small_24k_big runs/small_24k docs/results/small_24k/grid_frame.png

PROBE_WORKDIR holds the scan's results.jsonl (forced reference programs at every step, step 0
the untrained model); TRAIN_WORKDIR the `kareljax eval --split test --step S` summaries, which
give each trained step's test correct.
"""
import json
import os
import sys

import matplotlib
import numpy as np

from kareljax.probe import report_data, report_summaries

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CURRENT = report_data.CURRENT
TASKS = (("six paper tasks", None, "C0"), ("facing", "facing", "C1"),
         ("absolute position", "position", "C2"))


def accuracy(rows, step: int, depth: str, task: str | None, metric: str = "test_acc") -> float:
    """Test accuracy (or chance, metric "majority_acc") in %, original semantics, current state:
    one task, or the mean of the paper's state tasks (task None)."""
    rows = report_summaries.select(rows, semantics="original", offset=CURRENT, depth=depth,
                                   step=step)
    if task is not None:
        rows = report_summaries.select(rows, task=task)
    return 100 * report_summaries.task_mean(rows, metric)


def test_correct(train_workdir: str) -> dict[int, float]:
    """step -> test correct (%) of every `kareljax eval --split test` summary of the run."""
    out = {}
    for step, path in report_data.eval_summaries(train_workdir).items():
        with open(path) as f:
            out[step] = 100 * json.load(f)["correct"]
    return out


def figure(probe_workdir: str, train_workdir: str, out: str) -> None:
    rows = report_data.read_results(os.path.join(probe_workdir, report_data.RESULTS_FILE))
    steps = report_summaries.values_of(rows, "step")
    correct = test_correct(train_workdir)
    generation = {s: correct[s] for s in steps if s and s in correct}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))

    for name, task, colour in TASKS:
        left.plot(steps, [accuracy(rows, s, "mlp1", task) for s in steps], "-o", color=colour,
                  label=name)
        left.plot(steps, [accuracy(rows, s, "mlp1", task, "majority_acc") for s in steps], ":",
                  color=colour, alpha=0.7, label=f"{name}, chance")
    paper = 100 * report_data.PAPER_TABLE1["mlp1"]
    left.axhline(paper, color="grey", ls="--", lw=0.8,
                 label=f"the paper's 1-layer MLP ({paper:.1f} %)")
    for s, c in generation.items():
        left.annotate(f"{c:.0f} %", (s, 2), ha="center", fontsize=8, color="grey")
    left.set(xlabel="training step (0 = untrained; grey: test correct)",
             ylabel="1-layer probe test accuracy (%)", ylim=(0, 100),
             title="grid-frame state, current, original semantics")
    left.legend(fontsize=7, ncol=2)

    trained = sorted(generation)
    x = np.array([generation[s] for s in trained])
    for depth, colour in (("linear", "C0"), ("mlp1", "C3")):
        y = np.array([accuracy(rows, s, depth, None) for s in trained])
        slope, intercept, r2 = report_summaries.fit_line(x, y)
        label = report_data.DEPTH_LABELS[depth]
        right.plot(x, y, "o", color=colour, label=f"{label}: R² = {r2:.2f}, slope {slope:+.2f}")
        right.plot(x, slope * x + intercept, "-", color=colour, alpha=0.5)
        right.axhline(accuracy(rows, 0, depth, None), color=colour, ls="--", alpha=0.6,
                      label=f"{label}, untrained model")
    right.axhline(accuracy(rows, trained[-1], "linear", None, "majority_acc"), color="grey",
                  ls=":", label="chance")
    right.set(xlabel="generation accuracy, test correct (%)",
              ylabel="six paper tasks, mean test accuracy (%)",
              title="semantic content vs generation accuracy")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    figure(*sys.argv[1:])
