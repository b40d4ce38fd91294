"""Issue 31, E1 on runs/long_programs: how much of the plan the first action already implies.

A probe at `run{` that reads action 2, action 3 or the whole plan may only be reading action 1
(which the LM head reads from that state) and the model's habits: after action 1, its programs
go on in few ways. This script decodes the model's programs for the same train and test specs
as docs/results/e1_prompt_probes/run.py (the first `--train-specs` train specs, every test spec)
and predicts each plan label from the action before it alone, by the most frequent follower in
the train programs; likewise `next+1` / `next+2` at token k from the action at token k. One JSON
line per task: test accuracy of that lookup, of the majority label, and the samples.

    .venv/bin/python docs/results/e1_long_programs/implied_by_first_action.py \
        --workdir runs/long_programs
"""
from __future__ import annotations

import argparse
import collections
import json

import numpy as np

import kareljax
from kareljax.probe import prompt_probes as pp


def lookup_accuracy(x_train, y_train, x_test, y_test) -> float:
    """Test accuracy of predicting y by the most frequent train y for each x (rows of tuples)."""
    table = collections.defaultdict(collections.Counter)
    for x, y in zip(map(tuple, x_train), map(tuple, y_train)):
        table[x][y] += 1
    overall = collections.Counter(map(tuple, y_train)).most_common(1)[0][0]
    guess = [table[x].most_common(1)[0][0] if x in table else overall for x in map(tuple, x_test)]
    return float(np.mean([g == tuple(y) for g, y in zip(guess, y_test)]))


def majority_accuracy(y_train, y_test) -> float:
    top = collections.Counter(map(tuple, y_train)).most_common(1)[0][0]
    return float(np.mean([tuple(y) == top for y in y_test]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/long_programs")
    parser.add_argument("--step", default="last")
    parser.add_argument("--train-specs", type=int, default=3000)
    args = parser.parse_args()
    run = kareljax.load_run(args.workdir)
    step = run.checkpoints()[-1] if args.step == "last" else int(args.step)
    model = run.model(step)
    programs = {s: run.decode(model, run.specs(s, limit=args.train_specs if s == "train"
                                               else None)) for s in ("train", "test")}
    plan = {s: pp.whole_plan(p, 3) for s, p in programs.items()}
    rows = []
    for name, target in (("action2", [1]), ("action3", [2]), ("whole_plan", [0, 1, 2])):
        keep = {s: plan[s][:, max(target)] != pp.NONE if name != "whole_plan" else
                np.ones(len(plan[s]), bool) for s in plan}
        x = {s: plan[s][keep[s]][:, :1] for s in plan}            # action 1
        y = {s: plan[s][keep[s]][:, target] for s in plan}
        if name == "whole_plan":      # action 1 is given: the rest must follow from it
            y = {s: plan[s][:, 1:] for s in plan}
        rows.append({"task": name, "from": "action 1", "step": step,
                     "lookup_test_acc": round(lookup_accuracy(x["train"], y["train"], x["test"],
                                                              y["test"]), 4),
                     "majority_test_acc": round(majority_accuracy(y["train"], y["test"]), 4),
                     "n_train": int(len(y["train"])), "n_test": int(len(y["test"]))})
    for i, offset in enumerate(pp.PLAN_OFFSETS):
        if offset == 0:
            continue
        pairs = {}
        for s, p in programs.items():
            labels = pp.plan_labels(p)                      # [N, P, offsets]
            here = labels[..., list(pp.PLAN_OFFSETS).index(0)]
            there = labels[..., i]
            ok = (here >= 0) & (there >= 0)
            pairs[s] = (here[ok][:, None], there[ok][:, None])
        rows.append({"task": f"next+{offset}", "from": "the action at token k", "step": step,
                     "lookup_test_acc": round(lookup_accuracy(*pairs["train"], *pairs["test"]),
                                              4),
                     "majority_test_acc": round(majority_accuracy(pairs["train"][1],
                                                                  pairs["test"][1]), 4),
                     "n_train": int(len(pairs["train"][1])), "n_test": int(len(pairs["test"][1]))})
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
