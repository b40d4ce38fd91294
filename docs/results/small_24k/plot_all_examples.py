"""The figure of docs/results' section "Labels from all five shown examples": the six docs/spec.md §8 tasks'
mean (1-layer probes, current state, original semantics) with labels from example 0 and from all
five shown examples, against the untrained model, chance and the all-five labels' cap, and against
generation accuracy.

    python docs/results/small_24k/plot_all_examples.py EX0_RESULTS ALL5_RESULTS TRAIN_WORKDIR OUT.png
    # e.g. runs/small_24k_ex0/results_paper.jsonl runs/small_24k_all5/results_paper5.jsonl
    #      runs/small_24k docs/results/small_24k/all_examples.png

The cap: with one hidden state for five labels, a probe at best answers the most common one; per
task, the mean over the last step's test tokens of the most common label's share among the five
examples (from the collection beside ALL5_RESULTS).
"""
import os
import sys

import matplotlib
import numpy as np

from kareljax.probe import labels, report_data, report_summaries, store
from plot_grid_frame import accuracy, test_correct

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DEPTH = "mlp1"
TASKS = labels.PAPER_TASK_NAMES[:6]        # the six state tasks (not the branch)


def cap(workdir: str, step: int) -> float:
    """The all-five labels' ceiling for the six-task mean (%), from step `step`'s test split."""
    directory = store.step_dir(workdir, step)
    layout = store.read_index(directory)["layout"]
    collected = store.read_split(directory, "test")
    samples = labels.aligned(collected, offsets=(report_data.CURRENT,),
                             example=labels.ALL_EXAMPLES)
    by_task = labels.labels(collected, samples, layout["height"], layout["width"])
    token = samples["spec"].astype(np.int64) * collected["statement"].shape[1] + samples["token"]
    tokens, size = np.unique(token, return_counts=True)
    shares = []
    for task in TASKS:
        label = np.unique(by_task[task][0, :, 0], axis=0, return_inverse=True)[1].ravel()
        pairs, count = np.unique(np.stack([token, label], 1), axis=0, return_counts=True)
        most = np.zeros(len(tokens))
        np.maximum.at(most, np.searchsorted(tokens, pairs[:, 0]), count)
        shares.append(np.mean(most / size))
    return 100 * float(np.mean(shares))


def figure(ex0_results: str, all5_results: str, train_workdir: str, out: str) -> None:
    runs = {"labels from example 0": (report_data.read_results(ex0_results), "C0"),
            "labels from all five examples": (report_data.read_results(all5_results), "C3")}
    correct = test_correct(train_workdir)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, (rows, colour) in runs.items():
        steps = report_summaries.values_of(rows, "step")
        left.plot(steps, [accuracy(rows, s, DEPTH, None) for s in steps], "-o", color=colour,
                  label=name)
        left.plot(steps, [accuracy(rows, s, DEPTH, None, "majority_acc") for s in steps], ":",
                  color=colour, alpha=0.7, label=f"{name}: chance")
        trained = [s for s in steps if s and s in correct]
        x = np.array([correct[s] for s in trained])
        y = np.array([accuracy(rows, s, DEPTH, None) for s in trained])
        if len(trained) >= 3:
            slope, intercept, r2 = report_summaries.fit_line(x, y)
            right.plot(x, y, "o", color=colour,
                       label=f"{name}: R² = {r2:.2f}, slope {slope:+.3f}")
            right.plot(x, slope * x + intercept, "-", color=colour, alpha=0.5)
        else:
            right.plot(x, y, "o", color=colour,
                       label=f"{name} ({len(trained)} trained checkpoints: no fit)")
        right.axhline(accuracy(rows, 0, DEPTH, None), color=colour, ls="--", alpha=0.6,
                      label=f"{name}: untrained model")
    all5_rows = runs["labels from all five examples"][0]
    last = max(report_summaries.values_of(all5_rows, "step"))
    ceiling = cap(os.path.dirname(all5_results), last)
    for axis in (left, right):
        axis.axhline(ceiling, color="grey", ls="-.", lw=0.8,
                     label=f"all five: cap ({ceiling:.1f} %)")
    for s, c in correct.items():
        left.annotate(f"{c:.0f} %", (s, 37.5), ha="center", fontsize=8, color="grey")
    left.set(xlabel="training step (0 = untrained; grey: test correct)",
             ylabel="six docs/spec.md §8 tasks, mean test accuracy (%)", ylim=(37, 60),
             title="1-layer probes, current state, original semantics")
    right.set(xlabel="generation accuracy, test correct (%)",
              ylabel="six docs/spec.md §8 tasks, mean test accuracy (%)", ylim=(37, 60),
              title="semantic content vs generation accuracy")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    figure(*sys.argv[1:])
