"""Issue 31, E3: per checkpoint of a run, generation accuracy on short (1-5) and long (6-10)
test specs beside the probes' content above chance, and that content fitted against the long
specs' accuracy over the trained checkpoints. One JSON line per (step, depth), then one per depth
with the fit.

    .venv/bin/python docs/results/long_programs/long_specs.py --workdir runs/long_programs
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from kareljax.probe import report_data, report_summaries as rs

TASKS = ("facing", "position", "turns", "front_wall")   # read one by one, above chance


def _above(rows) -> float:
    return float(np.mean([r["test_acc"] - r["majority_acc"] for r in rows])) if rows else None


def _round(value):
    return None if value is None else round(float(value), 4)


def _accuracy(by_length: dict, lengths: range) -> float:
    rows = [r for n, r in by_length.items() if int(n) in lengths]
    if not rows:
        return None
    return sum(r["correct"] * r["programs"] for r in rows) / sum(r["programs"] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/long_programs")
    parser.add_argument("--offset", type=int, default=-1)
    args = parser.parse_args()
    results = report_data.read_results(os.path.join(args.workdir, "results.jsonl"))
    results = [r for r in results if r.get("layer") is None]
    generation = report_data.read_generation(args.workdir)
    content = rs.semantic_content(results, args.offset)
    fits = {}
    for depth in rs.values_of(results, "depth"):
        for step in sorted({r["step"] for r in results}):
            sel = rs.select(results, step=step, depth=depth, offset=args.offset)
            orig = [r for r in sel if r["semantics"] == "original"]
            alts = [r for r in sel if r["semantics"] != "original"]
            paper = set(rs.averaged_tasks(rs.values_of(sel, "task")))
            paper_orig = [r for r in orig if r["task"] in paper]
            paper_alts = [r for r in alts if r["task"] in paper]
            g = generation.get(step)
            difference = (_above(paper_orig) - _above(paper_alts)
                          if paper_orig and paper_alts else None)
            row = {"step": step, "depth": depth, "offset": args.offset,
                   "correct": _round(g and g["correct"]),
                   "correct_short": _round(g and _accuracy(g["by_length"], range(1, 6))),
                   "correct_long": _round(g and _accuracy(g["by_length"], range(6, 11))),
                   "generated_length": g and round(g["generated_length"], 2),
                   "content": _round(content[depth][step]),
                   "content_above_chance": _round(_above(paper_orig)),
                   "orig_minus_alt_above_chance": _round(difference),
                   **{f"{t}_above_chance": _round(_above([r for r in orig if r["task"] == t]))
                      for t in TASKS}}
            print(json.dumps(row))
            if g and row["correct_long"] is not None:
                fits.setdefault(depth, []).append(
                    (row["correct_long"], row["content"], row["content_above_chance"]))
    for depth, points in fits.items():
        x, *ys = np.array(points).T
        for name, y in zip(("content", "content_above_chance"), ys):
            slope, _, r2 = rs.fit_line(x, y)
            print(json.dumps({"depth": depth, "fit": f"{name} vs correct_long",
                              "checkpoints": len(x), "slope": round(slope, 3),
                              "r2": round(r2, 3)}))


if __name__ == "__main__":
    main()
