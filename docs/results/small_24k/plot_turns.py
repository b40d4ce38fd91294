"""The figure turns_orig_vs_alt.png of docs/results (the 24,000-step run): linear probes for the
turn count since the start under the original semantics and under alternatives 8/11, across
training (forced decoding of the same reference programs at every checkpoint), and their
difference above chance against generation accuracy (test correct of the own-program collections).

    python docs/results/small_24k/plot_turns.py runs/small_24k_forced runs/small_24k_all OUT.png
"""
import json
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OFFSETS = ((-1, "current", "C0"), (0, "next", "C1"))


def main(forced: str, own: str, out: str) -> None:
    rows = [json.loads(line) for line in open(f"{forced}/results.jsonl")]
    steps = sorted({r["step"] for r in rows})
    trained = steps[1:]                                   # step 0: forced only, no accuracy
    correct = {s: 100 * np.load(f"{own}/collect/step_{s:08d}/test-00000.npz")["correct"].mean()
               for s in trained}

    def turns(step, offset, original):
        return [r for r in rows if (r["step"], r["task"], r["offset"], r["depth"])
                == (step, "turns", offset, "linear") and (r["semantics"] == "original") == original]

    def above_chance(step, offset, original):
        return 100 * np.mean([r["test_acc"] - r["majority_acc"] for r in turns(step, offset, original)])

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for offset, name, colour in OFFSETS:
        for original, style, label in ((True, "-o", "original"), (False, "--o", "alternatives 8/11")):
            acc = [100 * np.mean([r["test_acc"] for r in turns(s, offset, original)]) for s in steps]
            left.plot(steps, acc, style, color=colour, alpha=1 if original else 0.6,
                      label=f"{name}, {label}")
        x = np.array([correct[s] for s in trained])
        y = np.array([above_chance(s, offset, True) - above_chance(s, offset, False) for s in trained])
        slope, intercept = np.polyfit(x, y, 1)
        right.plot(x, y, "o", color=colour, label=f"{name}: R² = {np.corrcoef(x, y)[0, 1] ** 2:.2f}")
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
