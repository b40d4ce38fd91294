"""The report (docs/spec.md §9): reads a run's probe results, training metrics and collections, computes
the summaries and draws the figures into <workdir>/report/ with a markdown summary, report.md.

Inputs (in the run directory W):
  results.jsonl     one row per probe (`kareljax scan`): step, semantics, alt, offset, depth, task,
                    seed, test_acc, majority_acc, train_acc_rise, <split>_samples,
                    <split>_available, ... (`report_data.REQUIRED_KEYS`; rows with a "layer" key
                    are per-layer probes);
  metrics.jsonl     training lines ("loss"), periodic evaluations ("val_correct"), events;
  collect/step_<S>/ index.json and test-*.npz shards with correct, correct_gen, generated_length,
                    reference_length and the program per test spec: generation accuracy and
                    distinct programs at each probed checkpoint;
  config.json       the run config; train.num_steps places the three training phases.

Only results.jsonl is required (`ReportInputError` names it when it is missing or a row lacks a
key, as rows from an earlier kareljax do); without the others the figures or columns that need
them are left out and `RunData.notes` says so.

Definitions: the *semantic content* of a checkpoint (per probe depth) is the mean test accuracy of
the original-semantics probes at the current-state offset (-1), averaged over seeds within a task,
then over tasks. Alternative semantics are averaged over alternatives the same way; orig - alt is
the semantic content attributable to the LM. The *baseline* is step 0 (the untrained model).

Matplotlib is used through the Agg canvas directly (no pyplot, no display, no global state).
"""
from __future__ import annotations

import os

import numpy as np

from kareljax import storage

from kareljax.probe.report_data import (  # noqa: F401
    CURRENT, DEPTH_LABELS, OFFSET_LABELS, PAPER_GENERATIVE, PAPER_R2, PAPER_TABLE1, REPORT_DIR,
    RESULTS_FILE, ReportInputError, TABLE1_OFFSETS, load_run)
from kareljax.probe.report_summaries import (  # noqa: F401
    BEATS_POINTS, RISES_R2, accuracy_table, averaged_tasks, correlation, fit_line, last_step,
    layer_table, layer_task_table, orig_vs_alt, paper_criteria, per_task_table, phase_of,
    phase_spans, sample_counts, semantic_content, values_of, why_undefined)
from kareljax.probe.report_figures import (  # noqa: F401
    plot_by_length, plot_correlation, plot_layer_tasks, plot_layers, plot_orig_vs_alt,
    plot_progress)


# --------------------------------------------------------------------------------------------
# The markdown report


RISING = 0.01   # train accuracy up by more than 1 point over a probe's second half: not converged


def still_learning_note(rows: list[dict]) -> str | None:
    """A note naming how many probes were still learning when their training stopped (their
    train accuracy rose more than `RISING` over its second half), None if none were."""
    rising = [r for r in rows if r["train_acc_rise"] > RISING]
    if not rising:
        return None
    by_depth = {}
    for r in rising:
        by_depth[r["depth"]] = by_depth.get(r["depth"], 0) + 1
    return (f"{len(rising):,} of {len(rows):,} probes were still learning when their training "
            f"stopped (train accuracy up more than {100 * RISING:.0f} point over its second half; "
            + ", ".join(f"{d} {n:,}" for d, n in sorted(by_depth.items()))
            + "): their accuracies are not converged; more fit steps "
            "(--config.probe.scan.fit.steps, or "
            "--profile paper, docs/spec.md §9) would change them")


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


def _samples_sentence(counts: dict[str, dict]) -> str | None:
    """'Samples per probe (train / val / test): ...', with the subsampled splits' totals."""
    if not counts:
        return None
    span = lambda lo, hi: f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"  # noqa: E731
    text = ("Samples per probe (" + " / ".join(counts) + "): "
            + " / ".join(span(*c["used"]) for c in counts.values()) + " per checkpoint")
    capped = [f"{split} {c['found']:,}" for split, c in counts.items() if c["found"]]
    if capped:
        text += (" (a seeded subsample where a split had more aligned samples: up to "
                 + ", ".join(capped) + " found; the scan's max_train_samples / max_eval_samples)")
    return text + "."


def write_report(workdir: str, out_dir: str | None = None) -> dict:
    """Reads the run, writes the figures and report.md into `out_dir` (default <workdir>/report);
    returns {report, figures, notes, r2 (depth -> R²), table1, last_step, ...}. Raises
    `ReportInputError` if results.jsonl is missing or unreadable."""
    run = load_run(workdir)
    out_dir = os.path.join(run.workdir, REPORT_DIR) if out_dir is None else os.fspath(out_dir)
    storage.makedirs(out_dir)
    notes = list(run.notes)
    results = run.results
    if not results:
        raise ReportInputError(f"{os.path.join(run.workdir, RESULTS_FILE)} has only per-layer "
                               "rows: no probes on the layer-averaged states")
    steps = values_of(results, "step")
    last = last_step(results)
    depths = values_of(results, "depth")
    alts = [s for s in values_of(results, "semantics") if s != "original"]
    unconverged = still_learning_note(results + run.layer_results)
    if unconverged:
        notes.append(unconverged)
    has_baseline = 0 in steps
    if not has_baseline:
        notes.append("no step-0 (untrained model) probes in results.jsonl: no baseline")
    content = semantic_content(results)
    if not content:
        notes.append("no original-semantics probes at the current-state offset (-1): no "
                     "semantic content curve or correlation")
    figures = {}
    rel = lambda p: os.path.basename(p)  # noqa: E731  (every figure is in out_dir)

    # 1. progress over training
    execution = run.order == "execution"
    if run.generation or content:
        figures["progress"] = plot_progress(os.path.join(out_dir, "progress.png"), run.generation,
                                            content, run.total_steps, run.val_evals,
                                            run.train_loss, run.floors, execution)
    # 1b. by program length, at the last checkpoint with generation accuracy
    gen_last = max(run.generation) if run.generation else None
    lengths = run.generation[gen_last].get("by_length", {}) if gen_last is not None else {}
    if lengths:
        figures["by_length"] = plot_by_length(os.path.join(out_dir, "by_length.png"), lengths,
                                              gen_last, execution)
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
        layer_steps = values_of(run.layer_results, "step")
        layer_depth = "linear" if "linear" in values_of(run.layer_results, "depth") else \
            values_of(run.layer_results, "depth")[0]
        by_task = layer_task_table(run.layer_results, sorted({layer_steps[0], layer_step}),
                                   depth=layer_depth)
        if by_task:
            figures["layers_by_task"] = plot_layer_tasks(
                os.path.join(out_dir, "layers_by_task.png"), by_task, CURRENT, layer_depth)
    table1 = accuracy_table(results, last)
    baseline_table = accuracy_table(results, 0) if has_baseline else {}

    # ---- markdown
    workdir = os.fspath(storage.path(run.workdir))
    md = [f"# Probe report: {os.path.basename(workdir.rstrip('/'))}", ""]
    gen_steps = sorted(run.generation)
    md.append(f"Run directory: `{workdir}`. {len(results)} probes "
              f"({len(depths)} depths × {len(values_of(results, 'offset'))} offsets × "
              f"{len(values_of(results, 'task'))} tasks × {len(values_of(results, 'seed'))} seeds "
              f"× {1 + len(alts)} semantics: original" + (f" + {len(alts)} alternative"
                                                         + "s" * (len(alts) > 1) if alts else "")
              + f") on {len(steps)} checkpoints (steps {', '.join(map(str, steps))})"
              + (f" of {run.total_steps} training steps" if run.total_steps else "") + ".")
    if samples := _samples_sentence(sample_counts(results)):
        md += ["", samples]
    md.append("")
    if gen_steps and execution:
        g = run.generation[gen_steps[-1]]
        md.append(f"**Final output accuracy** (step {gen_steps[-1]}, {g['specs']} test specs; "
                  f"an execution-order run: the reference program is the model's input and it "
                  f"writes the output grids, decoded greedily): **correct {pct(g['correct'])}** "
                  f"(all 5 shown output grids right), **correct_gen {pct(g['correct_gen'])}** "
                  f"(the 5 held-out examples' grids too).")
    elif gen_steps:
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
    if run.floors and execution and "copy_floor" in run.floors:
        md += ["", f"Floor on the same test split: copying each input grid as its output scores "
               f"{pct(run.floors['copy_floor'])} correct."]
    elif run.floors and not execution:
        best = run.floors["best_constant"]
        md += ["", f"Floors on the same test split (programs that ignore the grids): the no-op "
               f"program `pick_marker()` scores {pct(run.floors['noop_floor'])} correct, the best "
               f"constant program (`{best['code']}`, {best['searched']}) "
               f"{pct(best['correct'])}."]
    md.append("")
    md.append("*Semantic content* = mean test accuracy (over seeds, then tasks) of the probes on "
              "the original semantics at the current state (offset -1); *alternative* = the same "
              "averaged over the alternative semantics; orig - alt = the semantic content "
              "attributable to the LM. Baseline = step 0, the untrained model.")
    if notes:
        md += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    criteria = paper_criteria(content, run.generation, ova)
    md += _criteria_section(criteria, has_baseline)

    md += ["", "## 1. Generation accuracy and semantic content over training", ""]
    if "progress" in figures:
        md += [f"![progress]({rel(figures['progress'])})", ""]
        if run.total_steps:
            md.append("Shaded: the paper's three phases at its fractions of training (kareljax "
                      "docs/spec.md §9), placed on this run's steps, not measured on it: "
                      + "; ".join(f"{n} ({a:.0f}–{b:.0f})" for n, a, b in
                                  phase_spans(run.total_steps))
                      + ("." if execution else
                         ". Where this run's babbling ends shows in its distinct programs "
                         "(below), which rise when the model stops writing one program for "
                         "every spec."))
            md.append("")
    all_steps = sorted(set(steps) | set(gen_steps))
    trained_on = {r["step"]: r["train_samples"] for r in results}

    def probed(step: int) -> str:
        """Which programs the probes of `step` read."""
        if execution:
            return "reference (input)"
        return "reference (forced)" if step in run.forced_steps else "own"

    rows = []
    for s in all_steps:
        g = run.generation.get(s, {})
        rows.append([str(s), phase_of(s, run.total_steps), pct(g.get("correct")),
                     pct(g.get("correct_gen"))] + [pct(g.get("distinct"))] * (not execution)
                    + [pct(content.get(d, {}).get(s)) for d in depths]
                    + [f"{trained_on[s]:,}" if s in trained_on else "—", probed(s)])
    md += _table(["step", "the paper's phase", "correct", "correct_gen"]
                 + ["distinct programs"] * (not execution)
                 + [f"content: {DEPTH_LABELS.get(d, d)}" for d in depths]
                 + ["probe train samples", "programs probed"], rows)
    if execution:
        md += ["", "Programs probed: the reference programs, at every step: in execution order "
               "they are the model's input, and the states producing their tokens are probed "
               "as a synthesis run's own programs are. Correct and correct_gen are the output "
               "grids' accuracy."]
    else:
        if run.forced_steps:
            md += ["", "Programs probed: the model's own greedy programs, except at "
                   + ", ".join(f"step {s}" for s in sorted(run.forced_steps))
                   + ", where the reference programs were fed by forced decoding (the untrained "
                   "model's own programs are degenerate); there, labels at offsets 0 and later "
                   "follow actions the model did not choose."]
        reference = run.floors["reference_distinct"] if run.floors else None
        md += ["", "Distinct programs: how many different programs the model wrote for the test "
               "specs, as a share of the specs (one program for every spec while it babbles)"
               + (f"; the reference programs: {pct(reference)}." if reference is not None
                  else ".")]

    if lengths:
        md += ["", f"### By program length (step {gen_last}, test split)", "",
               f"![by length]({rel(figures['by_length'])})", ""]
        number = lambda v: "—" if v is None or not np.isfinite(v) else f"{v:.2f}"  # noqa: E731
        generated = ["generated length", "generated length (correct ones)"] * (not execution)
        md += _table(["reference length", "specs", "correct", "correct_gen"] + generated,
                     [[str(n), str(r["programs"]), pct(r["correct"]), pct(r["correct_gen"])]
                      + [number(r["generated_length"]),
                         number(r["generated_length_correct"])] * (not execution)
                      for n, r in sorted(lengths.items())])

    md += ["", f"## 2. Table 1 form (step {last}, original semantics)", ""]
    rows = []
    for o in TABLE1_OFFSETS:
        row = [OFFSET_LABELS.get(o, str(o))]
        for d in depths:
            cell = pct(table1.get((o, d)))
            if o in (CURRENT, CURRENT + 1) and d in PAPER_TABLE1:   # both readings of "current"
                cell += f" (paper {pct(PAPER_TABLE1[d])})"
            if baseline_table:
                cell += f"; step 0: {pct(baseline_table.get((o, d)))}"
            row.append(cell)
        rows.append(row)
    md += _table(["state"] + [DEPTH_LABELS.get(d, d) for d in depths], rows)
    md += ["", "Mean test accuracy over tasks and seeds. The paper's numbers (current state only) "
           "averaged its own task set, so they compare only roughly with these tasks ("
           + ", ".join(averaged_tasks(values_of(results, "task"))) + ")."]
    md += ["", "Which offset is the paper's \"current\" state is not decisive (kareljax "
           "docs/spec.md §8): offset -1 is the world after the last action already in the "
           "model's input, offset 0 the world its next action will produce, which the original's "
           "code calls \"predicting the future\". The paper's numbers stand beside both rows."]

    md += ["", f"## 3. Original vs alternative semantics (step {last})", ""]
    if ova:
        md += [f"![orig vs alt]({rel(figures['orig_vs_alt'])})", ""]
        rows = [[OFFSET_LABELS.get(o, str(o)), DEPTH_LABELS.get(d, d), pct(v["original"]),
                 pct(v["alternative"]), points(v["difference"]),
                 points(v["difference_above_chance"])] for (o, d), v in ova.items()]
        md += _table(["offset", "depth", "original", "alternative (mean)", "orig - alt (points)",
                      "orig - alt above chance (points)"], rows)
        md += ["", "Above chance: each probe's test accuracy minus its task's majority-label "
               "accuracy under the same semantics (`majority_acc`), before the means. An "
               "alternative semantics can make a task easier to guess (a `move()` that turns "
               "leaves the position at the start), which the raw difference counts against the "
               "LM."]
    else:
        md.append("No alternative-semantics probes in results.jsonl.")

    md += ["", f"## 4. Per task (step {last}, current state)", ""]
    rows = [[r["task"], DEPTH_LABELS.get(r["depth"], r["depth"]), pct(r["original"]),
             pct(r["alternative"]), points(r["difference"]), pct(r["baseline"]),
             pct(r["chance"]), pct(r["chance_alt"])]
            for r in per_task_table(results, last, 0 if has_baseline else None)]
    md += _table(["task", "depth", "original", "alternative (mean)", "orig - alt (points)",
                  "baseline (step 0, original)", "chance (original)", "chance (alternatives)"],
                 rows)
    md += ["", "Chance = the test accuracy of always answering the most frequent train label."
           + (" The branch task (programs with conditionals) is at offset 0."
              if "branch" in values_of(results, "task") else "")]

    md += ["", "## 5. Semantic content vs generation accuracy", ""]
    if correlations:
        md += [f"![correlation]({rel(figures['correlation'])})", ""]
        number = lambda v: f"{v:.3f}" if np.isfinite(v) else "—"
        rows = [[DEPTH_LABELS.get(d, d), str(len(c["steps"])), number(c["slope"]),
                 number(c["r2"])] for d, c in correlations.items()]
        md += _table(["depth", "checkpoints", "slope", "R²"], rows)
        md += ["", f"Least-squares line of semantic content on generation accuracy (correct) over "
               f"the checkpoints with both (step 0 too, unless it was collected by forced "
               f"decoding). The paper reports R² = {PAPER_R2}."]
        undefined = {}                                   # reason -> depths, in depth order
        for depth, c in correlations.items():
            if why := why_undefined(c):
                undefined.setdefault(why, []).append(DEPTH_LABELS.get(depth, depth))
        for why, depths in undefined.items():
            md += ["", f"No R² ({', '.join(depths)}): {why}."]
    else:
        md.append("Not computed (see the notes).")

    md += ["", "## 6. Per layer", ""]
    if layers:
        md += [f"![layers]({rel(figures['layers'])})", ""]
        md += ["Mean test accuracy (original semantics) of probes on single layers' states."]
        if "layers_by_task" in figures:
            md += ["", f"![layers by task]({rel(figures['layers_by_task'])})", "",
                   f"Each task on its own, current state ({layer_depth} probes): the first and "
                   "the last probed step, original and alternative semantics, with their chance "
                   "levels (the most frequent train label)."]
    else:
        md.append("Per-layer states were not collected (no rows with a `layer` key in "
                  "results.jsonl): only the mean over layers was probed.")
    md.append("")

    report_path = os.path.join(out_dir, "report.md")
    storage.write_text(report_path, "\n".join(md))
    return {"report": report_path, "figures": figures, "notes": notes, "last_step": last,
            "probes": len(results), "checkpoints": len(steps),
            "r2": {d: c["r2"] for d, c in correlations.items()},
            "table1": {f"{o}/{d}": v for (o, d), v in table1.items()},
            "final_generation": run.generation.get(gen_steps[-1]) if gen_steps else None,
            "criteria": criteria}


def _criteria_section(criteria: dict, has_baseline: bool) -> list[str]:
    """The markdown of the paper's own tests (`paper_criteria`), one row per depth."""
    md = ["", "## 0. The paper's criteria (trained checkpoints)", ""]
    if not criteria:
        return md + ["Not computed: no semantic content (see the notes)."]
    yes_no = lambda ok: "**yes**" if ok else "no"  # noqa: E731
    number = lambda v: f"{v:.3f}" if np.isfinite(v) else "—"  # noqa: E731
    rows = [[DEPTH_LABELS.get(d, d), str(len(c["steps"])), number(c["slope"]), number(c["r2"]),
             yes_no(c["rises"]),
             ", ".join(f"{points(m)} ({o:+d})" for o, m in sorted(c["orig_minus_alt"].items()))
             or "—", yes_no(c["beats"])] for d, c in criteria.items()]
    md += _table(["depth", "trained checkpoints", "slope", "R²", "content rises with accuracy",
                  "orig - alt above chance (offset)", "original beats the alternatives"], rows)
    md += ["", f"The paper's findings, tested as it tests them: semantic content rising with "
           f"generation accuracy over the trained checkpoints (a positive least-squares slope "
           f"with R² ≥ {RISES_R2}; the paper's R² is {PAPER_R2}), and the original semantics "
           f"read better than the alternatives at the last checkpoint (by more than "
           f"{100 * BEATS_POINTS:.0f} point above chance, at offset -1 or 0)."
           + (" Step 0 is left out of both: the untrained model is a reference, not a point "
              "on the curve. Its program tokens can read the starting pose well, because "
              "near-uniform causal attention over-weights the earliest tokens and example 0's "
              "robot is the prompt's first robot glyph, so its accuracy is no floor for the "
              "trained ones (docs/results)." if has_baseline else "")]
    return md

