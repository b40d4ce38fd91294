"""The report's summaries: means over seeds, tasks and alternatives, Table 1, orig vs alt, the
semantic content / accuracy correlation, the training phases."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from kareljax.probe.report_data import CURRENT, PHASES, SPLITS, TABLE1_OFFSETS

BRANCH_TASK = "branch"   # labels.BRANCH; its rows carry offset 0
# beyond docs/spec.md §8: the starting frame, the starting pose (= labels.EXTRA_TASK_NAMES, tested)
EXTRA_TASKS = ("turns", "ego_start_position", "initial_facing", "initial_position")

from kareljax.probe.report_data import (  # noqa: F401
    DEPTH_ORDER)


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


def averaged_tasks(names) -> list[str]:
    """The tasks that semantic content means average, of `names`: the state tasks; the tasks
    beyond docs/spec.md §8 (starting frame, starting pose) only when no docs/spec.md §8 state task is among
    them, so adding them to a scan leaves its semantic content comparable with the paper's. The
    branch task is not a state (the per-task table shows it)."""
    states = [n for n in names if n != BRANCH_TASK]
    if set(states) - set(EXTRA_TASKS):
        states = [n for n in states if n not in EXTRA_TASKS]
    return states


def task_mean(rows, metric: str = "test_acc") -> float:
    """Mean over seeds within each task, then over the `averaged_tasks` (NaN if none)."""
    by_task = defaultdict(list)
    for r in rows:
        by_task[r["task"]].append(float(r[metric]))
    counted = averaged_tasks(by_task)
    if not counted:
        return math.nan
    return float(np.mean([np.nanmean(by_task[t]) for t in counted]))


def _mean(rows, metric: str = "test_acc") -> float:
    return float(np.mean([float(r[metric]) for r in rows])) if rows else math.nan


def alt_mean(rows, metric: str = "test_acc", average=task_mean) -> float:
    """Mean over alternative semantics of each one's `average` (default: its task mean; the
    per-task table passes `_mean`, which keeps the branch task) (NaN if no alternative rows)."""
    alts = defaultdict(list)
    for r in rows:
        if r["semantics"] != "original":
            alts[r["semantics"]].append(r)
    if not alts:
        return math.nan
    return float(np.mean([average(v, metric) for v in alts.values()]))


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
    """(offset, depth) -> {original, alternative, difference, difference_above_chance (the same
    with each row's `majority_acc` taken off its test accuracy first)} at `step`; empty without
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
            above = [dict(r, test_acc=r["test_acc"] - r["majority_acc"]) for r in cell]
            out[(o, d)] = {"original": orig, "alternative": alt, "difference": orig - alt,
                           "difference_above_chance": task_mean(select(above, semantics="original"))
                           - alt_mean(above)}
    return out


def per_task_table(results, step: int, baseline_step: int | None = 0,
                   offset: int = CURRENT) -> list[dict]:
    """One row per (task, depth) at `step` and `offset`: original, alternative (mean over
    alternatives), difference, baseline (original at `baseline_step`; NaN if absent), and the
    chance levels (`majority_acc`) of the original and the alternatives (their mean)."""
    out = []
    for task in values_of(results, "task"):
        for depth in values_of(results, "depth"):
            cell = select(results, task=task, depth=depth,
                          offset=0 if task == BRANCH_TASK else offset)
            now = select(cell, step=step)
            if not now:
                continue
            orig = _mean(select(now, semantics="original"))
            alt = alt_mean(now, average=_mean)
            base = (_mean(select(cell, step=baseline_step, semantics="original"))
                    if baseline_step is not None else math.nan)
            out.append({"task": task, "depth": depth, "original": orig, "alternative": alt,
                        "difference": orig - alt, "baseline": base,
                        "chance": _mean(select(now, semantics="original"), "majority_acc"),
                        "chance_alt": alt_mean(now, "majority_acc", _mean)})
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


def why_undefined(c: dict) -> str | None:
    """Why a `correlation` result has no R² (None when it has one), in words for the report."""
    if np.isfinite(c["r2"]):
        return None
    if len(c["steps"]) < 3:
        return f"only {len(c['steps'])} checkpoint(s) have both numbers (3 needed)"
    if np.ptp(c["x"]) == 0:
        return (f"generation accuracy is {100 * c['x'][0]:.1f} % at every checkpoint "
                f"({', '.join(map(str, c['steps']))}): there is no line to fit")
    return "semantic content is the same at every checkpoint"


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


def layer_task_table(layer_results, steps, offset: int = CURRENT, depth: str = "linear") -> dict:
    """Per task, per-layer test accuracy at each of `steps` (e.g. the untrained baseline and the
    last checkpoint) under the original semantics and the alternatives (their mean), with each
    one's chance level: {task: {(step, "original" | "alternative"): {"acc": [per layer],
    "chance": float}}} (NaN where a layer has no row)."""
    rows = select(layer_results, offset=offset, depth=depth, step=tuple(steps))
    layers = values_of(rows, "layer")
    out = {}
    for task in values_of(rows, "task"):
        cells = {}
        for step in steps:
            for kind in ("original", "alternative"):
                cell = [r for r in select(rows, task=task, step=step)
                        if (r["semantics"] == "original") == (kind == "original")]
                if not cell:
                    continue
                cells[(step, kind)] = {
                    "acc": [_mean(select(cell, layer=la)) for la in layers],
                    "chance": _mean(cell, "majority_acc")}
        if cells:
            out[task] = cells
    return out


def sample_counts(rows) -> dict[str, dict]:
    """Per split, the probes' samples: {"used": (fewest, most), "found": most found, or None when
    every probe used all it found}; empty without rows."""
    if not rows:
        return {}
    counts = {}
    for split in SPLITS:
        used = [r[f"{split}_samples"] for r in rows]
        found = [r[f"{split}_available"] for r in rows
                 if r[f"{split}_available"] > r[f"{split}_samples"]]
        counts[split] = {"used": (min(used), max(used)), "found": max(found) if found else None}
    return counts


RISES_R2 = 0.5        # content "rises with accuracy": a positive slope with R² at least this
BEATS_POINTS = 0.01   # the original "beats" the alternatives by more than 1 point above chance


def paper_criteria(content: dict, generation: dict, ova: dict) -> dict:
    """The paper's own tests per depth, on the trained checkpoints only (step 0, the untrained
    model, stays a reference: its states over-weight the first grids, docs/results):
    {depth: {steps, slope, r2, rises, orig_minus_alt: {offset: points above chance}, beats}}.
    `rises`: semantic content rises with generation accuracy (slope > 0, R² >= RISES_R2);
    `beats`: at the last checkpoint the original semantics is read better than the alternatives
    (orig - alt above chance > BEATS_POINTS) at some current-state offset (-1 or 0)."""
    out = {}
    for depth, by_step in content.items():
        trained = {s: v for s, v in by_step.items() if s > 0}
        c = correlation(trained, generation)
        margins = {o: v["difference_above_chance"] for (o, d), v in ova.items()
                   if d == depth and o in (CURRENT, CURRENT + 1)}
        out[depth] = {"steps": c["steps"], "slope": c["slope"], "r2": c["r2"],
                      "rises": bool(np.isfinite(c["r2"]) and c["slope"] > 0
                                    and c["r2"] >= RISES_R2),
                      "orig_minus_alt": margins,
                      "beats": any(m > BEATS_POINTS for m in margins.values())}
    return out
