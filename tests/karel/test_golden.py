"""Golden vectors of the original implementation, run by both interpreters (docs/spec.md §1-3)."""
from __future__ import annotations

import numpy as np
import pytest

from kareljax.karel import bytecode, interpreter, reference, world
from kareljax.karel.parser import parse
from tests.conftest import GOLDEN_FILES
from tests.karel.reference_check import to_numpy

EXAMPLES = {"straight": 20000, "conditionals": 20000, "loops": 7500, "while": 2500}


def render_like_original(w: world.World) -> str:
    """The original's rendering: counts >= 10 truncated to their first digit."""
    rows = []
    for r in range(w.walls.shape[0]):
        row = ""
        for c in range(w.walls.shape[1]):
            if (r, c) == (int(w.row), int(w.col)):
                row += world.HERO_CHARS[int(w.facing)]
            elif w.walls[r, c]:
                row += "#"
            else:
                row += str(int(w.markers[r, c]))[0] if w.markers[r, c] else "."
        rows.append(row)
    return "\n".join(rows)


def problems(example: dict, final: world.World, num_actions: int, timed_out: bool) -> list[str]:
    """Every way `final` disagrees with the golden example (empty when it agrees)."""
    out = []
    if timed_out:
        out.append("timed out")
    if render_like_original(final) != example["output"]:
        out.append("original-style rendering")
    if int(np.max(final.markers)) < 10 and world.to_text(final) != example["output"]:
        out.append("to_text")
    if "output_exact" in example and world.to_exact(final) != example["output_exact"]:
        out.append(f"output_exact {world.to_exact(final)}")
    if "actions_executed" in example and num_actions != example["actions_executed"]:
        out.append(f"actions_executed {num_actions}")
    return out


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden_file_with_both_interpreters(golden, name):
    records = golden(name)
    programs = [parse(r["code"]) for r in records]
    inputs = [[world.from_text(e["input"]) for e in r["examples"]] for r in records]
    # One execute() call for the whole file.
    ex = to_numpy(interpreter.execute(bytecode.compile_batch(programs),
                                      world.stack([world.stack(ws) for ws in inputs])))
    compared, truncated, failures = 0, 0, []
    for p, (record, worlds) in enumerate(zip(records, inputs)):
        for e, (example, start) in enumerate(zip(record["examples"], worlds)):
            i = (p, e, 0)
            jax_final = world.World(start.walls, ex.markers[i], ex.row[i], ex.col[i], ex.facing[i])
            ref = reference.run(programs[p], start)
            for who, final, n, timed_out in (
                    ("jax", jax_final, int(ex.num_actions[i]), bool(ex.timeout[i])),
                    ("reference", ref.world, ref.actions_executed, ref.status != reference.OK)):
                if bad := problems(example, final, n, timed_out):
                    failures.append((who, record["code"], e, bad))
            compared += 1
            truncated += int(np.max(ref.world.markers)) >= 10
    assert not failures, f"{len(failures)} disagreements, first: {failures[:3]}"
    assert truncated > 0 or name != "loops"  # the original's truncated counts are exercised
    assert compared == sum(len(r["examples"]) for r in records) == EXAMPLES[name]
