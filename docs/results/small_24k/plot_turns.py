"""The turn-count figures of docs/results (the 24,000-step runs): linear probes for the turns since
the start under the original semantics and under alternatives 8/11, on the same forced reference
programs at every checkpoint; the numbers come from the report's own readers and summaries.

    # turns_orig_vs_alt.png: one run across training, and its difference above chance against
    # generation accuracy (test correct of the own-program collections)
    python docs/results/small_24k/plot_turns.py orig-vs-alt runs/small_24k_forced \
        runs/small_24k_all OUT.png
    # turns_seeds.png: the difference above chance across training, one line per training seed
    python docs/results/small_24k/plot_turns.py seeds OUT.png "seed 0=runs/small_24k_forced" \
        "seed 1=runs/small_24k_seed1" ...
"""
import sys

import matplotlib
import numpy as np

from kareljax.probe import report_data, report_summaries

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OFFSETS = ((-1, "current", "C0"), (0, "next", "C1"))
SEED_PANELS = ((-1, "current state (offset −1)"), (0, "next state (offset 0)"))


def turn_cells(workdir: str) -> dict[int, dict[int, dict]]:
    """step -> offset -> {original, alternative, difference, difference_above_chance} of the
    linear turns probes in <workdir>/results.jsonl."""
    turns = report_summaries.select(report_data.read_results(f"{workdir}/results.jsonl"),
                                    task="turns", depth="linear")
    by_step = {s: report_summaries.orig_vs_alt(turns, s)
               for s in report_summaries.values_of(turns, "step")}
    return {s: {offset: cell for (offset, _), cell in cells.items()}
            for s, cells in by_step.items()}


def differences(workdir: str) -> dict[int, dict[int, float]]:
    """offset -> {step: orig − alt above chance, in points} of the linear turns probes."""
    cells = turn_cells(workdir)
    return {offset: {s: 100 * cells[s][offset]["difference_above_chance"] for s in cells}
            for offset, _ in SEED_PANELS}


def orig_vs_alt_figure(forced: str, own: str, out: str) -> None:
    cells = turn_cells(forced)
    steps = sorted(cells)
    generation = report_data.read_generation(own)      # step -> {"correct", ...}; not forced step 0
    trained = [s for s in steps if s in generation]

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for offset, name, colour in OFFSETS:
        for key, style, alpha, label in (("original", "-o", 1.0, "original"),
                                         ("alternative", "--o", 0.6, "alternatives 8/11")):
            left.plot(steps, [100 * cells[s][offset][key] for s in steps], style, color=colour,
                      alpha=alpha, label=f"{name}, {label}")
        x = np.array([100 * generation[s]["correct"] for s in trained])
        y = np.array([100 * cells[s][offset]["difference_above_chance"] for s in trained])
        slope, intercept, r2 = report_summaries.fit_line(x, y)
        right.plot(x, y, "o", color=colour, label=f"{name}: R² = {r2:.2f}")
        right.plot(x, slope * x + intercept, "-", color=colour, alpha=0.5)
    left.set(xlabel="training step (0 = untrained)", ylabel="linear probe test accuracy (%)",
             title="turns since the start, reference programs")
    right.set(xlabel="generation accuracy, test correct (%)",
              ylabel="original − alternative, above chance (points)",
              title="semantics-specific content vs accuracy")
    right.axhline(0, color="grey", lw=0.8)
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def seeds_figure(out: str, *runs: str) -> None:
    """`runs`: "LABEL=WORKDIR", one line per run in each panel."""
    fig, axes = plt.subplots(1, len(SEED_PANELS), figsize=(11, 4), sharey=True)
    for run in runs:
        label, workdir = run.split("=", 1)
        diff = differences(workdir)
        for ax, (offset, _) in zip(axes, SEED_PANELS):
            steps = sorted(diff[offset])
            ax.plot(steps, [diff[offset][s] for s in steps], "-o", label=label)
    for ax, (_, title) in zip(axes, SEED_PANELS):
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(xlabel="training step (0 = untrained)", title=f"turns since the start, {title}")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("original − alternatives 8/11, above chance (points)")
    fig.suptitle("configs/small_24k.py, linear probes, "
                 "the same reference programs at every checkpoint", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


FIGURES = {"orig-vs-alt": orig_vs_alt_figure, "seeds": seeds_figure}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in FIGURES:
        raise SystemExit(__doc__)
    FIGURES[sys.argv[1]](*sys.argv[2:])
