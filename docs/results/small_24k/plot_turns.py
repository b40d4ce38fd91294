"""The figure turns_orig_vs_alt.png of docs/results (the 24,000-step run): linear probes for the
turn count since the start under the original semantics and under alternatives 8/11, across
training (forced decoding of the same reference programs at every checkpoint), and their
difference above chance against generation accuracy (test correct of the own-program collections).
The numbers come from the report's own readers and summaries.

    python docs/results/small_24k/plot_turns.py runs/small_24k_forced runs/small_24k_all OUT.png
"""
import sys

import matplotlib
import numpy as np

from kareljax.probe import report_data, report_summaries

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OFFSETS = ((-1, "current", "C0"), (0, "next", "C1"))


def main(forced: str, own: str, out: str) -> None:
    turns = report_summaries.select(report_data.read_results(f"{forced}/results.jsonl"),
                                    task="turns", depth="linear")
    steps = report_summaries.values_of(turns, "step")
    cells = {s: report_summaries.orig_vs_alt(turns, s) for s in steps}    # (offset, depth) -> {...}
    generation = report_data.read_generation(own)      # step -> {"correct", ...}; not forced step 0
    trained = [s for s in steps if s in generation]

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for offset, name, colour in OFFSETS:
        cell = lambda s: cells[s][(offset, "linear")]
        for key, style, alpha, label in (("original", "-o", 1.0, "original"),
                                         ("alternative", "--o", 0.6, "alternatives 8/11")):
            left.plot(steps, [100 * cell(s)[key] for s in steps], style, color=colour, alpha=alpha,
                      label=f"{name}, {label}")
        x = np.array([100 * generation[s]["correct"] for s in trained])
        y = np.array([100 * cell(s)["difference_above_chance"] for s in trained])
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


if __name__ == "__main__":
    main(*sys.argv[1:])
