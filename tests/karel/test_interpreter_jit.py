"""How the interpreter is compiled and placed: one trace per shape, jit-free runs, two devices."""
from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest

from kareljax.karel import bytecode, interpreter, sampling
from kareljax.karel.parser import parse
from kareljax.karel.printer import to_text
from kareljax.karel.semantics import semantics_table
from tests.karel.reference_check import assert_matches, reference_runs, to_numpy
from tests.karel.worlds_util import SHAPE, make_worlds

REPO = pathlib.Path(__file__).resolve().parents[2]


def _programs(seed: int, count: int):
    rng = np.random.default_rng(seed)
    return [sampling.random_program(rng, max_depth=2, max_block=3) for _ in range(count)]


@pytest.fixture
def counted_kernel(monkeypatch):
    """Replaces the jitted kernel with one that may be traced only once; yields the trace log."""
    chex.clear_trace_counter()
    traces = []

    def kernel(*args, **kwargs):
        traces.append(kwargs)
        return interpreter._kernel(*args, **kwargs)

    monkeypatch.setattr(interpreter, "_execute_kernel", jax.jit(
        chex.assert_max_traces(kernel, n=1), static_argnames=interpreter.KERNEL_STATIC_ARGS))
    yield traces
    chex.clear_trace_counter()


def test_kernel_traces_once_per_batch_shape(counted_kernel):
    results = []
    for seed, max_steps, alt in ((0, 40, 3), (1, 25, 8)):
        programs = _programs(seed, SHAPE[0])
        worlds = make_worlds(seed, SHAPE)
        code = dataclasses.replace(bytecode.compile_batch(programs, length=64), num_slots=4)
        remaps = semantics_table((alt,))
        ex = interpreter.execute(code, worlds, remaps, max_steps=max_steps, trace_len=48,
                                 cond_trace_len=48)
        results.append(to_numpy(ex))
        assert_matches(ex, reference_runs(programs, worlds, remaps, max_steps))
    assert len(counted_kernel) == 1
    assert not np.array_equal(results[0].markers, results[1].markers)
    # Another batch shape must trace again, which the wrapper rejects: it really is in use.
    with pytest.raises(AssertionError, match="traced > 1"):
        interpreter.execute(code, make_worlds(0, (SHAPE[0], 1)), remaps, max_steps=5,
                            trace_len=48, cond_trace_len=48)


def test_straight_line_kernel_traces_once_per_batch_shape(counted_kernel):
    """The straight-line fast path (`straight_runner.py`) too: two batches of one shape, one
    trace, and the reference interpreter's results."""
    for seed, alt in ((0, 3), (1, 8)):
        rng = np.random.default_rng(seed)
        programs = [sampling.random_straight_program(rng, n) for n in rng.integers(1, 11, SHAPE[0])]
        worlds = make_worlds(seed, SHAPE)
        code = bytecode.compile_batch(programs, length=16)
        assert code.straight
        remaps = semantics_table((alt,))
        ex = interpreter.execute(code, worlds, remaps, max_steps=30, trace_len=12,
                                 cond_trace_len=12)
        assert_matches(ex, reference_runs(programs, worlds, remaps, 30))
    assert len(counted_kernel) == 1


@pytest.mark.slow  # ~15 s: op-by-op execution compiles every primitive
def test_jit_and_disable_jit_agree():
    """The bytecode path run op by op equals the compiled run (a tiny batch: eager is slow)."""
    programs = [
        parse("def run() { repeat(2) { ifelse (front_is_clear()) { move() } else { turn_left() };"
              " put_marker() } }"),
        parse("def run() { while (not markers_present()) { pick_marker(); turn_right() } }")]
    worlds = make_worlds(5, (2, 1), 5, 5)
    code = bytecode.compile_batch(programs)
    kwargs = dict(max_steps=9, trace_len=6, cond_trace_len=6)
    jitted = to_numpy(interpreter.execute(code, worlds, **kwargs))
    with jax.disable_jit():
        eager = to_numpy(interpreter.execute(code, worlds, **kwargs))
    chex.assert_trees_all_equal(jitted, eager)
    assert jitted.timeout[1].all() and not jitted.timeout[0].any()


_TWO_DEVICES = """
import sys, numpy as np, jax
from kareljax.karel import bytecode, interpreter, parser, world
assert len(jax.devices()) == 2, jax.devices()
data = np.load(sys.argv[1])
out = {}
for name in ("bytecode", "straight"):
    programs = [parser.parse(t) for t in data[name + "_programs"]]
    worlds = world.World(*(data[name + "_" + f] for f in ("walls", "markers", "row", "col", "facing")))
    ex = interpreter.execute(bytecode.compile_batch(programs), worlds, data["remaps"],
                             max_steps=30, trace_len=12, cond_trace_len=12)
    for key, value in jax.tree_util.tree_flatten_with_path(ex)[0]:
        out[name + jax.tree_util.keystr(key)] = np.asarray(value)
np.savez(sys.argv[2], **out)
"""


def test_two_devices_with_padding_equal_one_device(tmp_path):
    """5 programs on a 2-device CPU mesh (padded to 6) give the single-device results."""
    remaps = semantics_table((8,))
    batches = {"bytecode": _programs(7, 5),
               "straight": [sampling.random_straight_program(np.random.default_rng(n), n)
                            for n in (1, 4, 7, 10, 11)]}
    inputs = {"remaps": remaps}
    for name, programs in batches.items():
        inputs[name + "_programs"] = np.array([to_text(p) for p in programs])
        worlds = make_worlds(len(name), (5, 3))
        for f in ("walls", "markers", "row", "col", "facing"):
            inputs[f"{name}_{f}"] = getattr(worlds, f)
    np.savez(tmp_path / "in.npz", **inputs)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _TWO_DEVICES, str(tmp_path / "in.npz"),
                           str(tmp_path / "out.npz")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = np.load(tmp_path / "out.npz")
    compared = 0
    for name, programs in batches.items():
        code = bytecode.compile_batch(programs)
        assert code.straight == (name == "straight")
        worlds = make_worlds(len(name), (5, 3))
        one = interpreter.execute(code, worlds, remaps, max_steps=30, trace_len=12,
                                  cond_trace_len=12)
        for key, value in jax.tree_util.tree_flatten_with_path(one)[0]:
            np.testing.assert_array_equal(two[name + jax.tree_util.keystr(key)], value,
                                          err_msg=name + jax.tree_util.keystr(key))
            compared += 1
    assert compared == len(two.files) and compared >= 2 * 11
