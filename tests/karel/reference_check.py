"""Element-wise comparison of a JAX `Execution` with reference-interpreter runs."""
from __future__ import annotations

import jax
import numpy as np

from kareljax.karel import reference
from kareljax.karel.interpreter import Execution


def to_numpy(ex: Execution) -> Execution:
    return jax.tree.map(np.asarray, ex)


def differences(ex: Execution, index: tuple[int, int, int], ref: reference.RunResult) -> list[str]:
    """What differs between element `index` = (program, world, semantics) of numpy `ex` and `ref`.

    Traces are compared when `ex` has them: the first min(K, reference length) entries must match
    and be valid, every later entry must be invalid.
    """
    out = []

    def check(name, got, want):
        if not np.array_equal(got, want):
            out.append(f"{name}: jax {got!r} != reference {want!r}")

    w = ref.world
    for name in ("row", "col", "facing"):
        check(name, getattr(ex, name)[index], int(getattr(w, name)))
    check("markers", ex.markers[index], w.markers)
    check("timeout", ex.timeout[index], ref.status == reference.TIMEOUT)
    check("steps", ex.steps[index], ref.steps)
    check("num_actions", ex.num_actions[index], ref.actions_executed)
    check("num_conds", ex.num_conds[index], len(ref.conds))
    if ex.trace is not None:
        trace = [tuple(getattr(ex.trace, f)[index]) for f in
                 ("row", "col", "facing", "markers_here", "stmt")]
        n = min(len(ex.trace.valid[index]), len(ref.actions))
        check("trace.valid", ex.trace.valid[index], np.arange(len(ex.trace.valid[index])) < n)
        for k, a in enumerate(ref.actions[:n]):
            check(f"trace[{k}]", tuple(int(f[k]) for f in trace),
                  (a.row, a.col, a.facing, a.markers_here, a.stmt))
    if ex.cond_trace is not None:
        valid = ex.cond_trace.valid[index]
        n = min(len(valid), len(ref.conds))
        check("cond_trace.valid", valid, np.arange(len(valid)) < n)
        check("cond_trace.value", ex.cond_trace.value[index][:n], [c.value for c in ref.conds[:n]])
        check("cond_trace.stmt", ex.cond_trace.stmt[index][:n], [c.stmt for c in ref.conds[:n]])
    return out


def assert_matches(ex: Execution, runs: dict) -> None:
    """`runs` maps (program, world, semantics) to reference results; every element must match."""
    ex = to_numpy(ex)
    failures = {i: d for i, ref in runs.items() if (d := differences(ex, i, ref))}
    assert not failures, f"{len(failures)}/{len(runs)} runs differ, e.g. " + repr(
        next(iter(failures.items())))


def reference_runs(programs, worlds, remaps, max_steps: int) -> dict:
    """Reference results keyed (program, world, semantics) for worlds with leading axes [P, E]."""
    num_worlds = np.shape(worlds.row)[1]
    fields = [np.asarray(x) for x in (worlds.walls, worlds.markers, worlds.row, worlds.col,
                                      worlds.facing)]
    runs = {}
    for p, program in enumerate(programs):
        for e in range(num_worlds):
            for s, remap in enumerate(np.asarray(remaps)):
                world = type(worlds)(*(np.array(f[p, e]) for f in fields))
                runs[p, e, s] = reference.run(program, world, remap=remap, max_steps=max_steps)
    return runs
