"""The starting-pose figure of docs/results ("Where the grid frame goes"): a grid-frame state is
the robot's starting pose composed with its state in the starting frame, and this draws what
1-layer probes read of each part and of the composition, across training, from the hidden states
producing the program's tokens (current state, original semantics), against chance.

    python docs/results/small_24k/plot_pose.py PROBE_WORKDIR TRAIN_WORKDIR OUT.png
    # e.g. runs/small_24k_pose runs/small_24k docs/results/small_24k/pose.png

PROBE_WORKDIR holds a scan's results.jsonl with the tasks of PANELS; TRAIN_WORKDIR the
`kareljax eval --split test --step S` summaries (each trained step's test correct).
"""
import os
import sys

import matplotlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot_grid_frame  # noqa: E402  (this folder's: accuracy, test correct)

from kareljax.probe import report_data, report_summaries  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# panel title -> (label, task, colour): the starting frame's part, the prompt's part, the
# grid-frame state that composes them
PANELS = {"facing": (("turns since the start", "turns", "C0"),
                     ("starting facing", "initial_facing", "C3"),
                     ("facing (grid frame)", "facing", "C1")),
          "position": (("displacement, starting frame", "ego_start_position", "C0"),
                       ("starting square", "initial_position", "C3"),
                       ("square (grid frame)", "position", "C2"))}


def figure(probe_workdir: str, train_workdir: str, out: str) -> None:
    rows = report_data.read_results(os.path.join(probe_workdir, report_data.RESULTS_FILE))
    steps = report_summaries.values_of(rows, "step")
    correct = plot_grid_frame.test_correct(train_workdir)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(11, 4), sharey=True)
    for ax, (title, lines) in zip(axes, PANELS.items()):
        for label, task, colour in lines:
            ax.plot(steps, [plot_grid_frame.accuracy(rows, s, "mlp1", task) for s in steps],
                    "-o", color=colour, label=label)
            ax.plot(steps, [plot_grid_frame.accuracy(rows, s, "mlp1", task, "majority_acc")
                            for s in steps], ":", color=colour, alpha=0.7)
        for s in steps:
            if s in correct:
                ax.annotate(f"{correct[s]:.0f} %", (s, 2), ha="center", fontsize=8, color="grey")
        ax.set(xlabel="training step (0 = untrained; grey: test correct; dotted: chance)",
               title=f"{title}: the two parts and the grid-frame state", ylim=(0, 105))
        ax.legend(fontsize=8)
    axes[0].set_ylabel("1-layer probe test accuracy (%)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    figure(*sys.argv[1:])
