"""The report (SPEC §9): reads a run's probe results, training metrics and collections, computes
the summaries and draws the figures into <workdir>/report/ with a markdown summary, report.md.

Inputs (in the run directory W):
  results.jsonl     one row per probe (`kareljax scan`): step, semantics, alt, offset, depth, task,
                    seed, val_acc, test_acc, ... (rows with a "layer" key are per-layer probes);
  metrics.jsonl     training lines ("loss"), periodic evaluations ("val_correct"), events;
  collect/step_<S>/ index.json and test-*.npz shards with correct, correct_gen, generated_length,
                    reference_length per test spec: generation accuracy at each probed checkpoint;
  config.json       the run config; train.steps places the three training phases.

Only results.jsonl is required (`ReportInputError` names it otherwise); without the others the
figures or columns that need them are left out and `RunData.notes` says so.

Definitions: the *semantic content* of a checkpoint (per probe depth) is the mean test accuracy of
the original-semantics probes at the current-state offset (-1), averaged over seeds within a task,
then over tasks. Alternative semantics are averaged over alternatives the same way; orig - alt is
the semantic content attributable to the LM. The *baseline* is step 0 (the untrained model).

Matplotlib is used through the Agg canvas directly (no pyplot, no display, no global state).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import defaultdict

import numpy as np

RESULTS_FILE = "results.jsonl"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
COLLECT_DIR = "collect"
REPORT_DIR = "report"

REQUIRED_KEYS = ("step", "semantics", "offset", "depth", "task", "seed", "test_acc")
GENERATION_KEYS = ("correct", "correct_gen", "generated_length", "reference_length")
DEPTH_ORDER = ("linear", "mlp1", "mlp2")
DEPTH_LABELS = {"linear": "linear", "mlp1": "1-layer MLP", "mlp2": "2-layer MLP"}
OFFSET_LABELS = {-2: "previous (-2)", -1: "current (-1)", 0: "next (0)", 1: "next-next (+1)",
                 2: "next-next-next (+2)"}
CURRENT = -1
TABLE1_OFFSETS = (-1, 0, 1)
PAPER_TABLE1 = {"linear": 0.632, "mlp1": 0.791, "mlp2": 0.823}   # current state, ICML 2024
PAPER_R2 = 0.878
PAPER_GENERATIVE = 0.924
# The paper's three phases, as fractions of training (SPEC §9).
PHASES = (("babbling", 0.0, 0.5), ("syntax acquisition", 0.5, 0.75),
          ("semantics acquisition", 0.75, 1.0))
PHASE_COLORS = ("#dddddd", "#fde9c9", "#d5ecd4")


class ReportInputError(Exception):
    """A required input is missing or unreadable; the message names the file."""


# --------------------------------------------------------------------------------------------
# Reading

@dataclasses.dataclass
class RunData:
    workdir: str
    results: list[dict]                  # probe rows on the layer-averaged states
    layer_results: list[dict]            # probe rows with a "layer" key
    generation: dict[int, dict]          # step -> {correct, correct_gen, *_length(_correct), specs}
    train_loss: list[tuple[int, float]]  # (step, loss) from metrics.jsonl
    val_evals: list[dict]                # metrics.jsonl lines with val_correct
    total_steps: int | None              # config.train.steps
    notes: list[str]                     # what was missing and what was skipped


def read_results(path: str) -> list[dict]:
    """The probe rows of a results.jsonl; `ReportInputError` naming `path` if it is missing, empty,
    or a line is not a JSON object with the required keys."""
    if not os.path.exists(path):
        raise ReportInputError(f"{path} does not exist: train the probes first "
                               f"(kareljax scan --workdir {os.path.dirname(path) or '.'})")
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ReportInputError(f"{path}, line {number}: not JSON ({e})") from None
            if not isinstance(row, dict):
                raise ReportInputError(f"{path}, line {number}: not a JSON object")
            missing = [k for k in REQUIRED_KEYS if k not in row]
            if missing:
                raise ReportInputError(f"{path}, line {number}: missing keys {missing}")
            rows.append(row)
    if not rows:
        raise ReportInputError(f"{path} has no probe rows")
    return rows


def read_metrics(path: str) -> tuple[list[tuple[int, float]], list[dict], int] | None:
    """(training (step, loss) pairs, evaluation lines, unreadable lines) or None if `path` is
    missing. Event lines are ignored; unreadable lines (a run still writing) are counted."""
    if not os.path.exists(path):
        return None
    loss, evals, bad = [], [], 0
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if not isinstance(row, dict) or "event" in row or "step" not in row:
                continue
            if "loss" in row:
                loss.append((int(row["step"]), float(row["loss"])))
            if "val_correct" in row:
                evals.append(row)
    return loss, evals, bad


def read_total_steps(path: str) -> int | None:
    """config.train.steps of a run's config.json, or None if the file or key is missing."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            steps = json.load(f)["train"]["steps"]
        return int(steps)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def read_generation(workdir: str, notes: list[str] | None = None) -> dict[int, dict]:
    """Generation accuracy of each collected checkpoint's test split: step -> {correct,
    correct_gen, generated_length, reference_length (means), specs}. Reads only those four arrays
    of each shard (not the hidden states). Unreadable checkpoints are skipped with a note."""
    notes = [] if notes is None else notes
    root = os.path.join(workdir, COLLECT_DIR)
    if not os.path.isdir(root):
        notes.append(f"{root} does not exist: no generation accuracy per checkpoint")
        return {}
    out = {}
    for name in sorted(os.listdir(root)):
        if not name.startswith("step_") or not name[5:].isdigit():
            continue
        directory = os.path.join(root, name)
        index_path = os.path.join(directory, "index.json")
        if not os.path.exists(index_path):
            notes.append(f"{index_path} does not exist (collection incomplete): step skipped")
            continue
        try:
            with open(index_path) as f:
                index = json.load(f)
            shards = index["splits"]["test"]["shards"]
        except (json.JSONDecodeError, KeyError, TypeError):
            notes.append(f"{index_path} lists no test shards: step skipped")
            continue
        parts = {k: [] for k in GENERATION_KEYS}
        try:
            for shard in shards:
                with np.load(os.path.join(directory, shard)) as data:
                    for k in GENERATION_KEYS:
                        if k in data.files:
                            parts[k].append(np.asarray(data[k]))
        except (OSError, ValueError) as e:
            notes.append(f"{directory}: cannot read a test shard ({e}): step skipped")
            continue
        if not parts["correct"]:
            notes.append(f"{directory}: test shards hold no `correct` array: step skipped")
            continue
        step = int(index.get("step", int(name[5:])))
        summary = {"specs": int(sum(len(p) for p in parts["correct"]))}
        arrays = {k: np.concatenate(v) for k, v in parts.items() if v}
        for k in GENERATION_KEYS:
            summary[k] = float(arrays[k].mean()) if k in arrays else math.nan
        correct = arrays["correct"].astype(bool)
        summary["generated_length_correct"] = (
            float(arrays["generated_length"][correct].mean())
            if "generated_length" in arrays and correct.any() else math.nan)
        out[step] = summary
    if not out:
        notes.append(f"no readable test collections under {root}: no generation accuracy")
    return out


def load_run(workdir: str) -> RunData:
    """Everything the report needs from a run directory (see the module docstring)."""
    workdir = os.fspath(workdir)
    notes: list[str] = []
    rows = read_results(os.path.join(workdir, RESULTS_FILE))
    results = [r for r in rows if r.get("layer") is None]
    layer_results = [r for r in rows if r.get("layer") is not None]
    metrics_path = os.path.join(workdir, METRICS_FILE)
    metrics = read_metrics(metrics_path)
    if metrics is None:
        notes.append(f"{metrics_path} does not exist: no training loss or val accuracy curves")
        metrics = ([], [], 0)
    elif metrics[2]:
        notes.append(f"{metrics_path}: {metrics[2]} unreadable line(s) ignored")
    config_path = os.path.join(workdir, CONFIG_FILE)
    total_steps = read_total_steps(config_path)
    if total_steps is None:
        notes.append(f"{config_path} is missing or has no train.steps: training phases not marked")
    generation = read_generation(workdir, notes)
    return RunData(workdir, results, layer_results, generation, metrics[0], metrics[1],
                   total_steps, notes)


# --------------------------------------------------------------------------------------------
# Summaries

def select(rows, **criteria) -> list[dict]:
    """Rows whose values equal every criterion (a tuple/list/set criterion means 'one of')."""
    def ok(row):
        for key, want in criteria.items():
            value = row.get(key)
            if isinstance(want, (tuple, list, set, frozenset)):
                if value not in want:
                    return False
            elif value != want:
                return False
        return True
    return [r for r in rows if ok(r)]


def values_of(rows, key) -> list:
    """The distinct values of `key`, sorted (depths in their natural order)."""
    values = {r[key] for r in rows if key in r}
    if key == "depth":
        return sorted(values, key=lambda d: (DEPTH_ORDER.index(d) if d in DEPTH_ORDER else 99, d))
    return sorted(values, key=lambda v: (str(type(v)), v))


def task_mean(rows, metric: str = "test_acc") -> float:
    """Mean over seeds within each task, then over tasks (NaN if no rows)."""
    by_task = defaultdict(list)
    for r in rows:
        by_task[r["task"]].append(float(r[metric]))
    if not by_task:
        return math.nan
    return float(np.mean([np.nanmean(v) for v in by_task.values()]))


def alt_mean(rows, metric: str = "test_acc") -> float:
    """Mean over alternative semantics of each one's task mean (NaN if no alternative rows)."""
    alts = defaultdict(list)
    for r in rows:
        if r["semantics"] != "original":
            alts[r["semantics"]].append(r)
    if not alts:
        return math.nan
    return float(np.mean([task_mean(v, metric) for v in alts.values()]))


def last_step(results) -> int:
    return max(int(r["step"]) for r in results)


def semantic_content(results, offset: int = CURRENT) -> dict[str, dict[int, float]]:
    """depth -> {step: mean test accuracy of the original semantics at `offset`}."""
    out = {}
    orig = select(results, semantics="original", offset=offset)
    for depth in values_of(orig, "depth"):
        rows = select(orig, depth=depth)
        out[depth] = {s: task_mean(select(rows, step=s)) for s in values_of(rows, "step")}
    return out


def accuracy_table(results, step: int, offsets=TABLE1_OFFSETS) -> dict[tuple[int, str], float]:
    """(offset, depth) -> mean test accuracy of the original semantics at `step` (Table 1 form)."""
    rows = select(results, semantics="original", step=step)
    return {(o, d): task_mean(select(rows, offset=o, depth=d))
            for o in offsets for d in values_of(rows, "depth")}


def orig_vs_alt(results, step: int) -> dict[tuple[int, str], dict]:
    """(offset, depth) -> {original, alternative, difference} at `step`; empty without
    alternative-semantics rows."""
    rows = select(results, step=step)
    if not any(r["semantics"] != "original" for r in rows):
        return {}
    out = {}
    for o in values_of(rows, "offset"):
        for d in values_of(rows, "depth"):
            cell = select(rows, offset=o, depth=d)
            orig = task_mean(select(cell, semantics="original"))
            alt = alt_mean(cell)
            out[(o, d)] = {"original": orig, "alternative": alt, "difference": orig - alt}
    return out


def per_task_table(results, step: int, baseline_step: int | None = 0,
                   offset: int = CURRENT) -> list[dict]:
    """One row per (task, depth) at `step` and `offset`: original, alternative (mean over
    alternatives), difference, and baseline (original at `baseline_step`; NaN if absent)."""
    out = []
    for task in values_of(results, "task"):
        for depth in values_of(results, "depth"):
            cell = select(results, task=task, depth=depth, offset=offset)
            now = select(cell, step=step)
            if not now:
                continue
            orig = task_mean(select(now, semantics="original"))
            alt = alt_mean(now)
            base = (task_mean(select(cell, step=baseline_step, semantics="original"))
                    if baseline_step is not None else math.nan)
            out.append({"task": task, "depth": depth, "original": orig, "alternative": alt,
                        "difference": orig - alt, "baseline": base})
    return out


def fit_line(x, y) -> tuple[float, float, float]:
    """Least-squares line y = slope x + intercept and its R² (NaN when undefined)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan
    slope, intercept = np.polyfit(x, y, 1)
    ss_res = float(np.sum((y - (slope * x + intercept)) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    return float(slope), float(intercept), r2


def correlation(content: dict[int, float], generation: dict[int, dict],
                metric: str = "correct") -> dict:
    """Semantic content (one depth: step -> value) against generation accuracy over the steps that
    have both: {steps, x (generation), y (content), slope, intercept, r2}."""
    steps = sorted(s for s in content if s in generation and np.isfinite(content[s])
                   and np.isfinite(generation[s][metric]))
    x = [generation[s][metric] for s in steps]
    y = [content[s] for s in steps]
    slope, intercept, r2 = fit_line(x, y) if len(steps) >= 3 else (math.nan,) * 3
    return {"steps": steps, "x": x, "y": y, "slope": slope, "intercept": intercept, "r2": r2}


def phase_spans(total_steps: int) -> list[tuple[str, float, float]]:
    """(name, first step, last step) of the paper's three training phases."""
    return [(name, a * total_steps, b * total_steps) for name, a, b in PHASES]


def phase_of(step: int, total_steps: int | None) -> str:
    if not total_steps:
        return "?"
    f = step / total_steps
    for name, a, b in PHASES:
        if f < b:
            return name
    return PHASES[-1][0]


def layer_table(layer_results, step: int) -> dict[tuple[int, int, str], float]:
    """(layer, offset, depth) -> mean test accuracy of the original semantics at `step`."""
    rows = select(layer_results, step=step, semantics="original")
    return {(int(layer), o, d): task_mean(select(rows, layer=layer, offset=o, depth=d))
            for layer in values_of(rows, "layer") for o in values_of(rows, "offset")
            for d in values_of(rows, "depth")
            if select(rows, layer=layer, offset=o, depth=d)}


# --------------------------------------------------------------------------------------------
# Figures (each writes one PNG and returns its path)

def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str) -> str:
    fig.savefig(path, format="png")
    return path


def _shade_phases(ax, total_steps: int | None, label: bool) -> None:
    if not total_steps:
        return
    for (name, a, b), color in zip(phase_spans(total_steps), PHASE_COLORS):
        ax.axvspan(a, b, color=color, alpha=0.6, lw=0, zorder=0)
        if label:
            ax.text((a + b) / 2, 1.01, name, transform=ax.get_xaxis_transform(), ha="center",
                    va="bottom", fontsize=8, color="0.3")
    ax.set_xlim(0, total_steps * 1.01)


def _depth_colors(depths) -> dict[str, str]:
    palette = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
    return {d: palette[i % len(palette)] for i, d in enumerate(depths)}


def plot_progress(path: str, generation: dict[int, dict], content: dict[str, dict[int, float]],
                  total_steps: int | None, val_evals=(), train_loss=()) -> str:
    """Generation accuracy (and val accuracy from training), semantic content per depth with the
    step-0 baseline dashed, and the training loss, against the training step; phases shaded."""
    panels = 3 if train_loss else 2
    fig = _figure(8, 2.6 * panels)
    axes = fig.subplots(panels, 1, sharex=True)
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
    ax.axhline(100 * PAPER_GENERATIVE, color="0.5", lw=0.8, ls="-.", label="paper final (92.4 %)")
    ax.set_ylabel("generation accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[1]
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
    if panels == 3:
        ax = axes[2]
        _shade_phases(ax, total_steps, label=False)
        loss = sorted(train_loss)
        ax.plot([s for s, _ in loss], [v for _, v in loss], lw=0.8, color="tab:gray")
        if all(v > 0 for _, v in loss):
            ax.set_yscale("log")
        ax.set_ylabel("training loss")
    axes[-1].set_xlabel("training step")
    return _save(fig, path)


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


# --------------------------------------------------------------------------------------------
# The markdown report

def pct(value: float) -> str:
    """A fraction as a percentage with one decimal, '—' for NaN/None."""
    if value is None or not np.isfinite(value):
        return "—"
    return f"{100 * value:.1f} %"


def points(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    return f"{100 * value:+.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def write_report(workdir: str, out_dir: str | None = None) -> dict:
    """Reads the run, writes the figures and report.md into `out_dir` (default <workdir>/report);
    returns {report, figures, notes, r2 (depth -> R²), table1, last_step, ...}. Raises
    `ReportInputError` if results.jsonl is missing or unreadable."""
    run = load_run(workdir)
    out_dir = os.path.join(run.workdir, REPORT_DIR) if out_dir is None else os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    notes = list(run.notes)
    results = run.results
    if not results:
        raise ReportInputError(f"{os.path.join(run.workdir, RESULTS_FILE)} has only per-layer "
                               "rows: no probes on the layer-averaged states")
    steps = values_of(results, "step")
    last = last_step(results)
    depths = values_of(results, "depth")
    alts = [s for s in values_of(results, "semantics") if s != "original"]
    has_baseline = 0 in steps
    if not has_baseline:
        notes.append("no step-0 (untrained model) probes in results.jsonl: no baseline")
    content = semantic_content(results)
    if not content:
        notes.append("no original-semantics probes at the current-state offset (-1): no "
                     "semantic content curve or correlation")
    figures = {}
    rel = lambda p: os.path.relpath(p, out_dir)  # noqa: E731

    # 1. progress over training
    if run.generation or content:
        figures["progress"] = plot_progress(os.path.join(out_dir, "progress.png"), run.generation,
                                            content, run.total_steps, run.val_evals,
                                            run.train_loss)
    # 2. orig vs alt
    ova = orig_vs_alt(results, last)
    if ova:
        figures["orig_vs_alt"] = plot_orig_vs_alt(os.path.join(out_dir, "orig_vs_alt.png"), ova,
                                                  last)
    else:
        notes.append("no alternative-semantics probes: original vs alternative skipped")
    # 3. correlation
    correlations = {d: correlation(c, run.generation) for d, c in content.items()}
    correlations = {d: c for d, c in correlations.items() if len(c["steps"]) >= 3}
    if correlations:
        figures["correlation"] = plot_correlation(os.path.join(out_dir, "correlation.png"),
                                                  correlations)
    elif content:
        notes.append("fewer than 3 checkpoints with both probe results and a test collection: "
                     "no correlation with generation accuracy")
    # 4. per layer
    layers = {}
    if run.layer_results:
        layer_step = last_step(run.layer_results)
        layers = layer_table(run.layer_results, layer_step)
        if layers:
            figures["layers"] = plot_layers(os.path.join(out_dir, "layers.png"), layers,
                                            layer_step)
    table1 = accuracy_table(results, last)
    baseline_table = accuracy_table(results, 0) if has_baseline else {}

    # ---- markdown
    md = [f"# Probe report: {os.path.basename(os.path.abspath(run.workdir))}", ""]
    gen_steps = sorted(run.generation)
    md.append(f"Run directory: `{os.path.abspath(run.workdir)}`. {len(results)} probes "
              f"({len(depths)} depths × {len(values_of(results, 'offset'))} offsets × "
              f"{len(values_of(results, 'task'))} tasks × {len(values_of(results, 'seed'))} seeds "
              f"× {1 + len(alts)} semantics: original" + (f" + {len(alts)} alternative"
                                                         + "s" * (len(alts) > 1) if alts else "")
              + f") on {len(steps)} checkpoints (steps {', '.join(map(str, steps))})"
              + (f" of {run.total_steps} training steps" if run.total_steps else "") + ".")
    md.append("")
    if gen_steps:
        g = run.generation[gen_steps[-1]]
        md.append(f"**Final generation accuracy** (step {gen_steps[-1]}, {g['specs']} test specs, "
                  f"greedy grammar-constrained decoding): **correct {pct(g['correct'])}** "
                  f"(the generated program's outputs match all 5 shown examples), **correct_gen "
                  f"{pct(g['correct_gen'])}** (they also match the 5 held-out examples: the "
                  f"program generalises rather than fitting the shown ones). The paper's final "
                  f"generative accuracy is {pct(PAPER_GENERATIVE)}. Mean generated length "
                  f"{g['generated_length']:.2f} actions ({g['generated_length_correct']:.2f} for "
                  f"the correct ones) vs {g['reference_length']:.2f} for the references.")
    else:
        md.append("**Final generation accuracy**: not available (no test collections).")
    md.append("")
    md.append("*Semantic content* = mean test accuracy (over seeds, then tasks) of the probes on "
              "the original semantics at the current state (offset -1); *alternative* = the same "
              "averaged over the alternative semantics; orig - alt = the semantic content "
              "attributable to the LM. Baseline = step 0, the untrained model.")
    if notes:
        md += ["", "Notes:", ""] + [f"- {n}" for n in notes]

    md += ["", "## 1. Generation accuracy and semantic content over training", ""]
    if "progress" in figures:
        md += [f"![progress]({rel(figures['progress'])})", ""]
        if run.total_steps:
            md.append("Shaded: " + "; ".join(f"{n} ({a:.0f}–{b:.0f})" for n, a, b in
                                             phase_spans(run.total_steps)) + ".")
            md.append("")
    all_steps = sorted(set(steps) | set(gen_steps))
    rows = []
    for s in all_steps:
        g = run.generation.get(s, {})
        rows.append([str(s), phase_of(s, run.total_steps), pct(g.get("correct")),
                     pct(g.get("correct_gen"))]
                    + [pct(content.get(d, {}).get(s)) for d in depths])
    md += _table(["step", "phase", "correct", "correct_gen"]
                 + [f"content: {DEPTH_LABELS.get(d, d)}" for d in depths], rows)

    md += ["", f"## 2. Table 1 form (step {last}, original semantics)", ""]
    rows = []
    for o in TABLE1_OFFSETS:
        row = [OFFSET_LABELS.get(o, str(o))]
        for d in depths:
            cell = pct(table1.get((o, d)))
            if o == CURRENT and d in PAPER_TABLE1:
                cell += f" (paper {pct(PAPER_TABLE1[d])})"
            if baseline_table:
                cell += f"; step 0: {pct(baseline_table.get((o, d)))}"
            row.append(cell)
        rows.append(row)
    md += _table(["state"] + [DEPTH_LABELS.get(d, d) for d in depths], rows)
    md += ["", "Mean test accuracy over tasks and seeds. The paper's numbers (current state only) "
           "averaged its own task set, so they compare only roughly with these tasks ("
           + ", ".join(values_of(results, "task")) + ")."]

    md += ["", f"## 3. Original vs alternative semantics (step {last})", ""]
    if ova:
        md += [f"![orig vs alt]({rel(figures['orig_vs_alt'])})", ""]
        rows = [[OFFSET_LABELS.get(o, str(o)), DEPTH_LABELS.get(d, d), pct(v["original"]),
                 pct(v["alternative"]), points(v["difference"])] for (o, d), v in ova.items()]
        md += _table(["offset", "depth", "original", "alternative (mean)", "orig - alt (points)"],
                     rows)
    else:
        md.append("No alternative-semantics probes in results.jsonl.")

    md += ["", f"## 4. Per task (step {last}, current state)", ""]
    rows = [[r["task"], DEPTH_LABELS.get(r["depth"], r["depth"]), pct(r["original"]),
             pct(r["alternative"]), points(r["difference"]), pct(r["baseline"])]
            for r in per_task_table(results, last, 0 if has_baseline else None)]
    md += _table(["task", "depth", "original", "alternative (mean)", "orig - alt (points)",
                  "baseline (step 0, original)"], rows)

    md += ["", "## 5. Semantic content vs generation accuracy", ""]
    if correlations:
        md += [f"![correlation]({rel(figures['correlation'])})", ""]
        rows = [[DEPTH_LABELS.get(d, d), str(len(c["steps"])), f"{c['slope']:.3f}",
                 f"{c['r2']:.3f}"] for d, c in correlations.items()]
        md += _table(["depth", "checkpoints", "slope", "R²"], rows)
        md += ["", f"Least-squares line of semantic content on generation accuracy (correct) over "
               f"the checkpoints with both (step 0 included). The paper reports R² = {PAPER_R2}."]
    else:
        md.append("Not computed (see the notes).")

    md += ["", "## 6. Per layer", ""]
    if layers:
        md += [f"![layers]({rel(figures['layers'])})", ""]
        md += ["Mean test accuracy (original semantics) of probes on single layers' states."]
    else:
        md.append("Per-layer states were not collected (no rows with a `layer` key in "
                  "results.jsonl): only the mean over layers was probed.")
    md.append("")

    report_path = os.path.join(out_dir, "report.md")
    with open(report_path, "w") as f:
        f.write("\n".join(md))
    return {"report": report_path, "figures": figures, "notes": notes, "last_step": last,
            "probes": len(results), "checkpoints": len(steps),
            "r2": {d: c["r2"] for d, c in correlations.items()},
            "table1": {f"{o}/{d}": v for (o, d), v in table1.items()},
            "final_generation": run.generation.get(gen_steps[-1]) if gen_steps else None}
