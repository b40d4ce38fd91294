"""Programs with if/ifelse: construction rules, shown-world rules, no_noops, seeding, golden file."""
from __future__ import annotations

import collections

import jax
import numpy as np
import pytest

from kareljax.data import programs as P
from kareljax.karel import parser, syntax, world as world_lib
from tests.data.programs_util import (
    ALPHA, block_size, condition_values, goodness_of_fit, histogram, homogeneity, kind_counts,
    no_noop_violations, numpy_worlds, shown_worlds, size)

N = 2000
BASE = P.ProgramOptions()
NO_NOOPS = P.ProgramOptions(no_noops=True)


@pytest.fixture(scope="module")
def worlds():
    return numpy_worlds(0, (N, 10))


@pytest.fixture(scope="module")
def base_programs(worlds):
    return P.conditional_programs(0, N, BASE, worlds)


@pytest.fixture(scope="module")
def no_noops_programs(worlds):
    return P.conditional_programs(1, N, NO_NOOPS, worlds)


def _conditionals(stmts, budget):
    """(statement, units left after its token) for every if/ifelse in a block of `budget`."""
    left = budget
    for s in stmts:
        left -= 1
        if not isinstance(s, syntax.Action):
            yield s, left
            for body in (s.body, getattr(s, "orelse", ())):
                yield from _conditionals(body, block_size(body))
            left -= size(s) - 1


def _length_rule_violations(stmt, r):
    """Checks body lengths against docs/spec.md §4 with r units left after the conditional token."""
    bad = []
    if isinstance(stmt, syntax.IfElse):
        if r + 1 < 3:
            bad.append(f"ifelse with {r + 1} remaining")
        e = block_size(stmt.orelse)
        if not 1 <= e <= max(1, r - 2):
            bad.append(f"else length {e} with r = {r}")
        r -= e
    elif r + 1 < 2:
        bad.append(f"if with {r + 1} remaining")
    t = block_size(stmt.body)
    if not 1 <= t <= max(1, r - 1):
        bad.append(f"then length {t} with r = {r}")
    return bad


@pytest.mark.parametrize("which", ["base", "no_noops"])
def test_construction_rules(which, base_programs, no_noops_programs, worlds):
    programs = base_programs if which == "base" else no_noops_programs
    lengths = [P.program_length(p) for p in programs]
    assert np.bincount(lengths).tolist() == [0] + [N // 10] * 10
    assert (np.diff(lengths) != 0).mean() > 0.8  # shuffled
    num_conditionals = 0
    for i, p in enumerate(programs):
        shown = shown_worlds(worlds, i)
        values = condition_values(p, shown)
        for stmt, r in _conditionals(p.body, P.program_length(p)):
            num_conditionals += 1
            assert stmt.body and getattr(stmt, "orelse", True), p
            assert not _length_rule_violations(stmt, r), (p, _length_rule_violations(stmt, r))
        index = syntax.statement_indices(p)
        for s in syntax.walk(p.body):
            if not isinstance(s, syntax.Action):
                reached = values[index[id(s)]]
                assert len(reached) >= 2, (p, "conditional reached by < 2 shown worlds")
                if which == "no_noops":
                    assert 0 < sum(reached) < len(reached), (p, "condition does not split")
    assert num_conditionals > N // 4


def test_no_noops_rules(no_noops_programs, base_programs):
    for p in no_noops_programs:
        assert not no_noop_violations(p.body), p
    assert sum(bool(no_noop_violations(p.body)) for p in base_programs) > N // 10
    assert sum(not syntax.is_straight_line(p) for p in no_noops_programs) > N // 5


def test_condition_uniform_and_negation_half(base_programs):
    conds = [s.cond for p in base_programs for s in syntax.walk(p.body)
             if not isinstance(s, syntax.Action)]
    kinds = np.bincount([c.kind for c in conds], minlength=5)
    assert goodness_of_fit(kinds, [1] * 5) > ALPHA
    negated = sum(c.negated for c in conds)
    assert abs(negated - len(conds) / 2) < 3.5 * np.sqrt(len(conds)) / 2


@pytest.mark.parametrize("kind", ["if", "ifelse"])
def test_body_lengths_uniform(kind, worlds):
    """Length-10 programs of moves and one conditional kind; a leading conditional has r = 9:
    ifelse: else uniform on 1..7, then then uniform on 1..(9 - else - 1); if: then uniform 1..8."""
    weights = (1, 0, 0, 0, 0, 1, 0) if kind == "if" else (1, 0, 0, 0, 0, 0, 1)
    options = P.ProgramOptions(min_length=10, max_length=10, base_weights=weights)
    programs = P.conditional_programs(2, N, options, worlds)
    leading = [p.body[0] for p in programs if not isinstance(p.body[0], syntax.Action)]
    assert len(leading) > N // 3
    observed, expected = collections.Counter(), collections.Counter()
    if kind == "ifelse":
        elses = [block_size(s.orelse) for s in leading]
        assert goodness_of_fit(histogram(elses, range(1, 8)), [1] * 7) > ALPHA
    for s in leading:
        r = 9 - (block_size(s.orelse) if kind == "ifelse" else 0)
        observed[(r, block_size(s.body))] += 1
        for t in range(1, r):
            expected[(r, t)] += 1 / (r - 1)
    cells = sorted(expected)
    assert set(observed) <= set(cells)
    assert goodness_of_fit([observed[c] for c in cells], [expected[c] for c in cells]) > ALPHA


def test_only_shown_worlds_matter(worlds, base_programs):
    other = numpy_worlds(1, (N, 10))
    mixed = jax.tree.map(lambda a, b: np.concatenate([a[:, :5], b[:, 5:]], axis=1), worlds, other)
    assert P.conditional_programs(0, N, BASE, mixed) == base_programs
    assert P.conditional_programs(0, N, BASE, other) != base_programs


def test_seeded(worlds, base_programs):
    assert P.conditional_programs(np.random.default_rng(0), N, BASE, worlds) == base_programs
    assert P.conditional_programs(3, N, BASE, worlds) != base_programs


@pytest.mark.parametrize("options", [P.ProgramOptions(no_conditionals=True),
                                     P.ProgramOptions(no_conditionals=True, no_noops=True)])
def test_without_conditionals_matches_straight_weights(options, worlds):
    programs = P.conditional_programs(4, N, options, worlds)
    assert all(syntax.is_straight_line(p) for p in programs)
    if not options.no_noops:
        assert goodness_of_fit(kind_counts(programs)[:5], options.weights[:5]) > ALPHA
    else:
        assert not any(no_noop_violations(p.body) for p in programs)


def test_golden_conditional_distribution(golden):
    """Ours on the golden file's own shown worlds vs the original's programs: lengths, kinds,
    how many programs have a conditional, how many actions they have."""
    records = golden("conditionals")
    theirs = [parser.parse(r["code"]) for r in records]
    worlds = world_lib.stack([world_lib.stack([world_lib.from_text(e["input"])
                                               for e in r["examples"]]) for r in records])
    ours = P.conditional_programs(0, len(records), BASE, worlds)
    for programs in (theirs, ours):
        assert np.bincount([P.program_length(p) for p in programs]).tolist() == [0] + [200] * 10
    ours_kinds, theirs_kinds = kind_counts(ours), kind_counts(theirs)
    assert homogeneity(ours_kinds, theirs_kinds) > ALPHA
    np.testing.assert_allclose(ours_kinds / ours_kinds.sum(), theirs_kinds / theirs_kinds.sum(),
                               atol=0.015)
    with_cond = [sum(not syntax.is_straight_line(p) for p in x) for x in (ours, theirs)]
    assert homogeneity(with_cond, [len(ours) - with_cond[0], len(theirs) - with_cond[1]]) > ALPHA
    assert abs(with_cond[0] - with_cond[1]) / len(ours) < 0.05
    actions = [histogram([syntax.num_actions(p) for p in x], range(1, 11)) for x in (ours, theirs)]
    assert homogeneity(*actions) > ALPHA
    top = [histogram([len(p.body) for p in x], range(1, 11)) for x in (ours, theirs)]
    assert homogeneity(*top) > ALPHA
