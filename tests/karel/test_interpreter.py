"""The JAX interpreter against the reference interpreter: random programs, fast path, remaps."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kareljax.karel import bytecode, interpreter, reference, sampling, syntax
from kareljax.karel.parser import parse
from kareljax.karel.semantics import ALT_MAPS, ORIGINAL, semantics_table
from tests.karel import strategies as ks
from tests.karel.reference_check import assert_matches, reference_runs, to_numpy
from tests.karel.worlds_util import SHAPE, SIZES, make_worlds, world_at

# Fixed shapes, so the kernel compiles once per world size and path.
LENGTH, SLOTS, K, KC = 96, 4, 64, 64   # K, KC > any count reachable within MAX_STEPS
MAX_STEPS = 60
NUM_PROGRAMS = SHAPE[0]
# Always in the batch: a loop that may never end, so no batch takes the straight-line path.
WALKER = parse("def run() { while (not markers_present()) { move(); turn_left(); put_marker() } }")


def fits(program: syntax.Program) -> bool:
    return (len(bytecode.compile_program(program)[0]) <= LENGTH
            and syntax.repeat_depth(program.body) <= SLOTS)


def compile_fixed(programs) -> bytecode.Bytecode:
    """Padded to LENGTH with SLOTS loop counters (unused counters are harmless)."""
    return dataclasses.replace(bytecode.compile_batch(programs, length=LENGTH), num_slots=SLOTS)


full_language = st.one_of(
    ks.programs(max_leaves=10),
    st.integers(0, 2**32 - 1).map(lambda s: sampling.random_program(np.random.default_rng(s))),
).filter(fits)


@settings(max_examples=40, deadline=None)
@given(programs=st.lists(full_language, min_size=NUM_PROGRAMS - 1, max_size=NUM_PROGRAMS - 1),
       seed=st.integers(0, 2**31 - 1), size=st.sampled_from(SIZES),
       max_steps=st.integers(0, MAX_STEPS), alt=st.integers(0, len(ALT_MAPS) - 1))
def test_random_programs_match_reference(programs, seed, size, max_steps, alt):
    """Final states, status, counters and full traces agree, under the original and one alt map."""
    programs = programs + [WALKER]
    worlds = make_worlds(seed, SHAPE, *size)
    remaps = semantics_table((alt,))
    code = compile_fixed(programs)
    assert not code.straight
    ex = interpreter.execute(code, worlds, remaps, max_steps=max_steps, trace_len=K,
                             cond_trace_len=KC)
    assert ex.row.shape == SHAPE + (2,) and ex.markers.shape == SHAPE + (2,) + size
    assert_matches(ex, reference_runs(programs, worlds, remaps, max_steps))


def test_differential_test_sees_timeouts_and_both_outcomes():
    """Guards the differential test's inputs: budgets that run out and programs that finish."""
    rng = np.random.default_rng(0)
    programs = [sampling.random_program(rng) for _ in range(NUM_PROGRAMS - 1)] + [WALKER]
    worlds = make_worlds(0, SHAPE)
    assert all(map(fits, programs))
    ex = to_numpy(interpreter.execute(compile_fixed(programs), worlds, semantics_table((0,)),
                                      max_steps=30, trace_len=K, cond_trace_len=KC))
    assert ex.timeout.any() and not ex.timeout.all()
    assert (ex.num_conds > 0).any() and (ex.num_actions > 0).any()


@pytest.mark.parametrize("trace_len", [12, 4])
def test_straight_line_fast_path_matches_reference(trace_len):
    """Straight-line batches (incl. budgets below the length: timeouts) and traces cut at K."""
    rng = np.random.default_rng(1)
    programs = [sampling.random_straight_program(rng, n) for n in (1, 3, 5, 7, 9, 11)]
    worlds = make_worlds(1, SHAPE)
    code = bytecode.compile_batch(programs, length=12)
    assert code.straight
    remaps = semantics_table((0, 3))
    for max_steps in (0, 4, 10, 1000):
        ex = interpreter.execute(code, worlds, remaps, max_steps=max_steps, trace_len=trace_len)
        runs = reference_runs(programs, worlds, remaps, max_steps)
        assert_matches(ex, runs)
        assert any(r.status == reference.TIMEOUT for r in runs.values()) == (max_steps < 11)


LONG_RUNS = [parse(t) for t in (
    "def run() { move() }",
    "def run() { repeat(19) { repeat(19) { put_marker() } } }",
    "def run() { while (front_is_clear()) { move(); put_marker() }; turn_left() }",
    "def run() { repeat(7) { ifelse (not markers_present()) { put_marker() } else { move() } } }",
    "def run() { while (not markers_present()) { move(); turn_right(); put_marker(); pick_marker() } }",
    "def run() { turn_left(); repeat(0) { move() }; repeat(3) { while (left_is_clear()) { turn_left(); move() } } }",
)]


@pytest.mark.parametrize("chunk_size", [16384, 5])
def test_long_runs_and_chunking_match_reference(chunk_size):
    """Runs of hundreds of steps (counts above 255) agree whatever the chunk size."""
    worlds = int32_markers(make_worlds(2, SHAPE))
    ex = interpreter.execute(bytecode.compile_batch(LONG_RUNS), worlds, max_steps=700,
                             trace_len=704, cond_trace_len=704, chunk_size=chunk_size)
    runs = reference_runs(LONG_RUNS, worlds, semantics_table(), 700)
    assert_matches(ex, runs)
    assert int(np.max(ex.markers)) > 255 and max(r.steps for r in runs.values()) == 700


def int32_markers(worlds):
    return dataclasses.replace(worlds, markers=np.asarray(worlds.markers, np.int32))


def test_reference_counts_beyond_255_on_uint8_worlds():
    world = world_at(make_worlds(2, SHAPE), 0, 0)
    assert world.markers.dtype == np.uint8
    result = reference.run(LONG_RUNS[1], world)
    assert result.world.markers[int(world.row), int(world.col)] == 361


def test_bytecode_traces_truncated_at_k_keep_the_first_entries():
    programs = [parse("def run() { if (front_is_clear()) { move() } }")] + LONG_RUNS[1:]
    worlds = make_worlds(3, SHAPE)
    ex = interpreter.execute(bytecode.compile_batch(programs), worlds, max_steps=200,
                             trace_len=2, cond_trace_len=1)
    assert_matches(ex, reference_runs(programs, worlds, semantics_table(), 200))


def substitute(stmts, remap):
    """The program text with every action token replaced by the primitive `remap` gives it."""
    out = []
    for s in stmts:
        if isinstance(s, syntax.Action):
            out.append(syntax.Action(int(remap[s.kind])))
        elif isinstance(s, syntax.IfElse):
            out.append(dataclasses.replace(s, body=substitute(s.body, remap),
                                           orelse=substitute(s.orelse, remap)))
        else:
            out.append(dataclasses.replace(s, body=substitute(s.body, remap)))
    return tuple(out)


def test_all_alternative_semantics_in_one_call():
    """Row 1 + i equals the reference on the token-substituted program and with remap ALT_MAPS[i]."""
    rng = np.random.default_rng(4)
    programs = [sampling.random_program(rng, weights=(6, 1, 1, 0, 1)) for _ in range(5)]
    programs.append(parse("def run() { move(); turn_left(); turn_right(); pick_marker(); put_marker() }"))
    worlds = make_worlds(4, SHAPE)
    table = semantics_table(range(12))
    assert table.shape == (13, 5) and (table[0] == ORIGINAL).all()
    ex = interpreter.execute(bytecode.compile_batch(programs), worlds, table, max_steps=200,
                             trace_len=208, cond_trace_len=208)
    assert ex.row.shape == SHAPE + (13,)
    substituted, remapped = {}, {}
    for i in range(12):
        alt = [syntax.Program(substitute(p.body, ALT_MAPS[i])) for p in programs]
        for (p, e, _), run in reference_runs(alt, worlds, [ORIGINAL], 200).items():
            substituted[p, e, 1 + i] = run
        for (p, e, _), run in reference_runs(programs, worlds, [ALT_MAPS[i]], 200).items():
            remapped[p, e, 1 + i] = run
    assert_matches(ex, substituted)
    assert_matches(ex, remapped)
    assert_matches(ex, reference_runs(programs, worlds, [ORIGINAL], 200))
    # The maps really change behaviour: some element differs from the original row.
    ex = to_numpy(ex)
    assert any(not np.array_equal(ex.facing[..., 0], ex.facing[..., 1 + i]) for i in range(12))


@pytest.mark.parametrize("bad, message", [
    (dict(remaps=np.zeros((2, 4), np.int32)), "remaps"),
    (dict(max_steps=-1), "max_steps"),
])
def test_execute_rejects_bad_arguments(bad, message):
    code = bytecode.compile_batch([WALKER] * SHAPE[0])
    with pytest.raises(ValueError, match=message):
        interpreter.execute(code, make_worlds(0, SHAPE), **bad)


def test_execute_rejects_mismatched_batches():
    worlds = make_worlds(0, SHAPE)
    with pytest.raises(ValueError):
        interpreter.execute(bytecode.compile_batch([WALKER] * (SHAPE[0] - 1)), worlds)
    flat = dataclasses.replace(worlds, **{f.name: np.asarray(getattr(worlds, f.name))[0]
                                          for f in dataclasses.fields(worlds)})
    with pytest.raises(ValueError):
        interpreter.execute(bytecode.compile_batch([WALKER] * SHAPE[1]), flat)


def test_max_markers_bound_gives_the_same_results_and_a_compact_dtype():
    """A caller's bound on the markers picks the dtype without a pass over them; results match."""
    rng = np.random.default_rng(11)
    programs = [sampling.random_straight_program(rng, 12) for _ in range(6)]
    worlds = make_worlds(6, SHAPE)
    code = bytecode.compile_batch(programs)
    scanned = interpreter.execute(code, worlds, trace_len=13)
    bounded = interpreter.execute(code, worlds, trace_len=13, max_markers=1)
    assert bounded.markers.dtype == np.uint8
    for a, b in zip(to_numpy(scanned), to_numpy(bounded)):
        np.testing.assert_array_equal(a, b)
    big = interpreter.execute(code, worlds, max_markers=300)
    assert big.markers.dtype == np.int16
    np.testing.assert_array_equal(np.asarray(big.markers), np.asarray(scanned.markers))


def test_reference_without_recording_runs_the_same():
    """record=False (what the benchmark times) changes nothing but the traces it keeps."""
    rng = np.random.default_rng(5)
    worlds = make_worlds(4, SHAPE)
    for p in range(4):
        program = sampling.random_program(rng)
        world = world_at(worlds, p, 0)
        full = reference.run(program, world, max_steps=80)
        bare = reference.run(program, world, max_steps=80, record=False)
        assert (bare.world, bare.status, bare.steps, bare.actions_executed) == (
            full.world, full.status, full.steps, full.actions_executed)
        assert bare.actions == [] and bare.conds == [] and len(full.actions) == full.actions_executed + 1
