"""The figure turns_seeds.png of docs/results: for each training seed of configs/small_24k.py, the
linear turn-count probes' original − alternative difference above chance (SPEC §9's semantic
content attributable to the model) across training, current and next state, on the same forced
reference programs at every checkpoint. The numbers come from the report's readers and summaries.

    python docs/results/small_24k/plot_seeds.py OUT.png "seed 0=runs/small_24k_forced" \
        "seed 1=runs/small_24k_seed1" ...
"""
import sys

import matplotlib

from kareljax.probe import report_data, report_summaries

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = ((-1, "current state (offset −1)"), (0, "next state (offset 0)"))


def differences(workdir: str) -> dict[int, dict[int, float]]:
    """offset -> {step: orig − alt above chance, in points} of the linear turns probes."""
    turns = report_summaries.select(report_data.read_results(f"{workdir}/results.jsonl"),
                                    task="turns", depth="linear")
    steps = report_summaries.values_of(turns, "step")
    cells = {s: report_summaries.orig_vs_alt(turns, s) for s in steps}
    return {offset: {s: 100 * cells[s][(offset, "linear")]["difference_above_chance"]
                     for s in steps}
            for offset, _ in PANELS}


def main(out: str, *runs: str) -> None:
    fig, axes = plt.subplots(1, len(PANELS), figsize=(11, 4), sharey=True)
    for run in runs:
        label, workdir = run.split("=", 1)
        diff = differences(workdir)
        for ax, (offset, _) in zip(axes, PANELS):
            steps = sorted(diff[offset])
            ax.plot(steps, [diff[offset][s] for s in steps], "-o", label=label)
    for ax, (_, title) in zip(axes, PANELS):
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(xlabel="training step (0 = untrained)", title=f"turns since the start, {title}")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("original − alternatives 8/11, above chance (points)")
    fig.suptitle("configs/small_24k.py, linear probes, the same reference programs at every checkpoint",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main(*sys.argv[1:])
