"""The report's figures, drawn with matplotlib's Agg canvas (no pyplot, no global state); each
function writes one PNG and returns its path."""
from __future__ import annotations

import math

import numpy as np

from kareljax.probe.report_data import (  # noqa: F401
    DEPTH_LABELS, DEPTH_ORDER, PAPER_GENERATIVE, PAPER_R2, PHASE_COLORS)
from kareljax.probe.report_summaries import (  # noqa: F401
    phase_spans)


# --------------------------------------------------------------------------------------------
# Figures (each writes one PNG and returns its path)

def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str) -> str:
    from kareljax import storage
    with storage.write_whole(path, "wb") as f:
        fig.savefig(f, format="png")
    return path


def _shade_phases(ax, total_steps: int | None, label: bool) -> None:
    """The paper's three phases at its fractions of training (docs/spec.md §9), labelled as the
    paper's: they are not measured on the run drawn."""
    if not total_steps:
        return
    for (name, a, b), color in zip(phase_spans(total_steps), PHASE_COLORS):
        ax.axvspan(a, b, color=color, alpha=0.6, lw=0, zorder=0)
        if label:
            ax.text((a + b) / 2, 1.01, f"paper: {name}", transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8, color="0.3")
    ax.set_xlim(0, total_steps * 1.01)


def _depth_colors(depths) -> dict[str, str]:
    palette = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
    return {d: palette[i % len(palette)] for i, d in enumerate(depths)}


def plot_progress(path: str, generation: dict[int, dict], content: dict[str, dict[int, float]],
                  total_steps: int | None, val_evals=(), train_loss=(), floors=None,
                  execution: bool = False) -> str:
    """Generation accuracy (and val accuracy from training, and the constant-program floors),
    how varied the programs are (distinct programs over specs: near 0 while the model babbles),
    semantic content per depth with the step-0 baseline dashed, and the training loss, against the
    training step; phases shaded. Panels without data are left out: the diversity panel without
    programs in the collections or `val_distinct` in the training evals, the semantic-content
    panel without probe results (`content` empty), the loss panel without a loss curve. An
    `execution`-order run's accuracy is of its output grids, its floor copying the inputs, and it
    has no diversity panel (its programs are the references it reads)."""
    diverse = not execution and _has_diversity(generation, val_evals)
    panels = 1 + diverse + bool(content) + bool(train_loss)
    heights = [2.6] + [1.6] * diverse + [2.6] * bool(content) + [2.6] * bool(train_loss)
    fig = _figure(8, sum(heights))
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": heights})[:, 0]
    ax = axes[0]
    _shade_phases(ax, total_steps, label=True)
    steps = sorted(generation)
    for key, style in (("correct", "o-"), ("correct_gen", "s--")):
        if steps:
            ax.plot(steps, [100 * generation[s][key] for s in steps], style, label=f"{key} (test)")
    if val_evals:
        ev = sorted(val_evals, key=lambda r: r["step"])
        ax.plot([r["step"] for r in ev], [100 * r["val_correct"] for r in ev], ":", color="0.4",
                lw=1, label="val_correct (training evals)")
    if execution:
        if floors and "copy_floor" in floors:
            ax.axhline(100 * floors["copy_floor"], color="tab:red", lw=0.8, ls=":",
                       label=f"inputs copied ({100 * floors['copy_floor']:.1f} %)")
    else:
        ax.axhline(100 * PAPER_GENERATIVE, color="0.5", lw=0.8, ls="-.",
                   label="paper final (92.4 %)")
    if floors and not execution:
        best = floors["best_constant"]
        ax.axhline(100 * floors["noop_floor"], color="tab:red", lw=0.8, ls=":",
                   label=f"no-op floor ({100 * floors['noop_floor']:.1f} %)")
        ax.axhline(100 * best["correct"], color="tab:red", lw=0.8, ls="--",
                   label=f"best constant program ({100 * best['correct']:.1f} %)")
    ax.set_ylabel("output accuracy (%)" if execution else "generation accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=8, loc="upper left")

    if diverse:
        _plot_diversity(axes[1], generation, val_evals, total_steps,
                        floors["reference_distinct"] if floors else None)
    if content:
        _plot_content(axes[1 + diverse], content, total_steps)
    if train_loss:
        ax = axes[-1]
        _shade_phases(ax, total_steps, label=False)
        loss = sorted(train_loss)
        ax.plot([s for s, _ in loss], [v for _, v in loss], lw=0.8, color="tab:gray")
        if all(v > 0 for _, v in loss):
            ax.set_yscale("log")
        ax.set_ylabel("training loss")
    axes[-1].set_xlabel("training step")
    return _save(fig, path)


def _has_diversity(generation: dict[int, dict], val_evals) -> bool:
    return (any(np.isfinite(g.get("distinct", math.nan)) for g in generation.values())
            or any("val_distinct" in r for r in val_evals))


def _plot_diversity(ax, generation: dict[int, dict], val_evals, total_steps: int | None,
                    reference: float | None) -> None:
    """Distinct programs over specs against the step: the collected checkpoints' test programs,
    the training evals' val programs, and the reference programs' level."""
    _shade_phases(ax, total_steps, label=False)
    steps = [s for s in sorted(generation) if np.isfinite(generation[s].get("distinct", math.nan))]
    if steps:
        ax.plot(steps, [100 * generation[s]["distinct"] for s in steps], "^-",
                color="tab:purple", label="test programs")
    ev = sorted((r for r in val_evals if "val_distinct" in r), key=lambda r: r["step"])
    if ev:
        ax.plot([r["step"] for r in ev], [100 * r["val_distinct"] for r in ev], ":",
                color="tab:purple", lw=1, label="val programs (training evals)")
    if reference is not None:
        ax.axhline(100 * reference, color="tab:purple", lw=0.8, ls="-.",
                   label=f"reference programs ({100 * reference:.1f} %)")
    ax.set_ylabel("distinct programs\n(% of specs)")
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=7, loc="upper left")


def _plot_content(ax, content: dict[str, dict[int, float]], total_steps: int | None) -> None:
    """Semantic content per depth against the step, the step-0 baseline dashed."""
    _shade_phases(ax, total_steps, label=False)
    colors = _depth_colors(content)
    for depth, by_step in content.items():
        s = sorted(by_step)
        ax.plot(s, [100 * by_step[k] for k in s], "o-", color=colors[depth],
                label=DEPTH_LABELS.get(depth, depth))
        if 0 in by_step:
            ax.axhline(100 * by_step[0], color=colors[depth], ls="--", lw=1,
                       label=f"{DEPTH_LABELS.get(depth, depth)}: step-0 baseline")
    ax.set_ylabel("semantic content (%)\n(orig, current state)")
    ax.legend(fontsize=7, loc="best", ncol=2)


def plot_orig_vs_alt(path: str, table: dict[tuple[int, str], dict], step: int) -> str:
    """Per depth: grouped bars (original, mean of alternatives) per offset, and below their
    difference (orig - alt)."""
    offsets = sorted({o for o, _ in table})
    depths = [d for d in DEPTH_ORDER if any(k[1] == d for k in table)]
    depths += sorted({d for _, d in table} - set(depths))
    fig = _figure(3.6 * len(depths), 5.5)
    axes = np.atleast_2d(fig.subplots(2, len(depths), sharey="row", squeeze=False))
    x = np.arange(len(offsets))
    for j, depth in enumerate(depths):
        cells = [table.get((o, depth), {}) for o in offsets]
        get = lambda key: [100 * c.get(key, math.nan) for c in cells]  # noqa: E731
        ax = axes[0, j]
        ax.bar(x - 0.2, get("original"), 0.4, label="original")
        ax.bar(x + 0.2, get("alternative"), 0.4, label="alternative (mean)")
        ax.set_title(DEPTH_LABELS.get(depth, depth))
        ax.set_xticks(x, [str(o) for o in offsets])
        ax.set_ylim(0, 100)
        ax = axes[1, j]
        diff = get("difference")
        ax.bar(x, diff, 0.5, color=["tab:green" if v >= 0 else "tab:red" for v in diff])
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xticks(x, [str(o) for o in offsets])
        ax.set_xlabel("offset (-1 current, 0 next, +1 next-next)")
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[1, 0].set_ylabel("orig - alt (points)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"original vs alternative semantics, step {step}")
    return _save(fig, path)


def plot_by_length(path: str, table: dict[int, dict], step: int, execution: bool = False
                   ) -> str:
    """Per reference program length: generation accuracy (correct, correct_gen) with the number of
    specs, and the mean generated length (all programs, correct ones) against the diagonal. An
    `execution`-order run writes no program: its output accuracy alone."""
    lengths = sorted(table)
    x = np.arange(len(lengths))
    get = lambda key: [100 * table[n][key] for n in lengths]  # noqa: E731
    fig = _figure(5.5 if execution else 10, 3.8)
    left, right = fig.subplots(1, 2) if not execution else (fig.subplots(), None)
    left.bar(x - 0.2, get("correct"), 0.4, label="correct")
    left.bar(x + 0.2, get("correct_gen"), 0.4, label="correct_gen")
    for i, n in enumerate(lengths):
        left.annotate(f"{table[n]['programs']}", (i, 101), ha="center", fontsize=6, color="0.4")
    left.set_xticks(x, [str(n) for n in lengths])
    left.set_ylim(0, 122)                # room above 100 % for the counts and the legend
    left.set_yticks(range(0, 101, 20))
    left.set_xlabel("reference program length (actions; specs above the bars)")
    left.set_ylabel("output accuracy (%)" if execution else "generation accuracy (%)")
    left.legend(fontsize=8, loc="upper right", ncol=2)
    if execution:
        fig.suptitle(f"output accuracy by program length, step {step} (test split)")
        return _save(fig, path)
    right.plot(lengths, [table[n]["generated_length"] for n in lengths], "o-",
               label="generated, all")
    right.plot(lengths, [math.nan if table[n]["generated_length_correct"] is None
                         else table[n]["generated_length_correct"] for n in lengths], "s--",
               label="generated, correct ones")
    right.plot(lengths, lengths, color="0.5", lw=0.8, ls=":", label="the reference's length")
    right.set_xlabel("reference program length (actions)")
    right.set_ylabel("mean generated length (actions)")
    right.legend(fontsize=8)
    fig.suptitle(f"generation by program length, step {step} (test split)")
    return _save(fig, path)


def plot_correlation(path: str, correlations: dict[str, dict], metric: str = "correct") -> str:
    """Semantic content vs generation accuracy over checkpoints, one colour per depth, with the
    least-squares lines and R²."""
    fig = _figure(6.5, 4.8)
    ax = fig.subplots()
    colors = _depth_colors(correlations)
    for depth, c in correlations.items():
        x, y = 100 * np.asarray(c["x"]), 100 * np.asarray(c["y"])
        label = f"{DEPTH_LABELS.get(depth, depth)} (R² = {c['r2']:.3f})"
        ax.scatter(x, y, color=colors[depth], label=label, s=24)
        if np.isfinite(c["slope"]):
            xs = np.linspace(x.min(), x.max(), 2)
            ax.plot(xs, c["slope"] * xs + 100 * c["intercept"], color=colors[depth], lw=1)
        for s, a, b in zip(c["steps"], x, y):
            ax.annotate(str(s), (a, b), fontsize=6, color="0.4", xytext=(2, 2),
                        textcoords="offset points")
    ax.set_xlabel(f"generation accuracy, {metric} (%)")
    ax.set_ylabel("semantic content (%)")
    ax.set_title(f"semantic content vs generation accuracy (paper: R² = {PAPER_R2})")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_layers(path: str, table: dict[tuple[int, int, str], float], step: int) -> str:
    """Heatmaps of per-layer probe accuracy: rows layer, columns offset, one panel per depth."""
    layers = sorted({k[0] for k in table})
    offsets = sorted({k[1] for k in table})
    depths = [d for d in DEPTH_ORDER if any(k[2] == d for k in table)]
    depths += sorted({k[2] for k in table} - set(depths))
    fig = _figure(1.2 + 2.6 * len(depths), 1.5 + 0.35 * len(layers))
    axes = fig.subplots(1, len(depths), squeeze=False)[0]
    image = None
    for ax, depth in zip(axes, depths):
        grid = np.array([[100 * table.get((la, o, depth), math.nan) for o in offsets]
                         for la in layers])
        image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto", origin="lower")
        ax.set_xticks(range(len(offsets)), [str(o) for o in offsets])
        ax.set_yticks(range(len(layers)), [str(la) for la in layers])
        ax.set_xlabel("offset")
        ax.set_title(DEPTH_LABELS.get(depth, depth))
        for i in range(len(layers)):
            for j in range(len(offsets)):
                if np.isfinite(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=7,
                            color="w" if grid[i, j] < 60 else "k")
    axes[0].set_ylabel("layer")
    fig.colorbar(image, ax=list(axes), label="test accuracy (%)")
    fig.suptitle(f"per-layer probes (original semantics), step {step}")
    return _save(fig, path)


def plot_layer_tasks(path: str, table: dict, offset: int, depth: str) -> str:
    """One panel per task: test accuracy against layer for each (step, semantics) of
    `report_summaries.layer_task_table`, the later step in colour, the earliest (the untrained
    baseline) in grey; solid original, dashed alternative; dotted lines the chance levels."""
    tasks = list(table)
    cols = min(3, len(tasks))
    rows = -(-len(tasks) // cols)
    fig = _figure(0.6 + 3.0 * cols, 0.6 + 2.4 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, task in zip(axes, tasks):
        cells = table[task]
        steps = sorted({step for step, _ in cells})
        for (step, kind), cell in sorted(cells.items()):
            color = "0.55" if step == steps[0] and len(steps) > 1 else "tab:blue"
            style = "-" if kind == "original" else "--"
            layers = range(len(cell["acc"]))
            ax.plot(layers, 100 * np.asarray(cell["acc"]), style, color=color, marker="o", ms=3,
                    label=f"step {step}, {kind}")
            if np.isfinite(cell["chance"]):
                ax.axhline(100 * cell["chance"], ls=":", lw=0.8, color="k" if kind == "original"
                           else "0.5")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("layer (0 = embeddings)", fontsize=8)
        ax.set_ylabel("test accuracy (%)", fontsize=8)
    for ax in axes[len(tasks):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"per-layer probes by task ({DEPTH_LABELS.get(depth, depth)}, offset {offset}; "
                 "dotted: chance, black original, grey alternative)", fontsize=9)
    return _save(fig, path)
