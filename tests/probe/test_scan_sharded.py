"""The probe scan spread over devices: the same results on 4 CPU devices as on 1 (padding, blocks,
several calls), whether a call spreads one input's probes (`fit.fit_sharded`) or whole inputs
(`fit.fit_sources`), one compilation for calls of one shape, and a scan by two processes
(jax.distributed on localhost, its two checkpoints one on each device) that writes what one
process writes and resumes from its cache."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from kareljax import config_files
from kareljax.data import dataset_config, generate
from kareljax.eval.evaluate import program_grammar
from kareljax.probe import collect, scan_run, store
from tests.conftest import REPO
from tests.train.conftest import cli_env
from tests.train.test_distributed import free_port

# Runs `jobs.train_group` on synthetic data (5 probes of 4 classes, each a different linear
# function of the inputs) three ways: the default budget (one call), blocks of one probe, and
# memory for one probe per device (several calls, the last padded); prints the rows and the
# compilation counts.
GROUPS = r"""
import json
import numpy as np
from kareljax.probe import fit, jobs, models, scan

rng = np.random.default_rng(0)
num, n, d = 5, 96, 8
xs = [rng.normal(size=(n, d)).astype(np.float32) for _ in range(3)]
w = rng.normal(size=(num, d, 4))
ys = [np.argmax(np.einsum("nd,pdk->pnk", x, w), -1)[..., None].astype(np.int32) for x in xs]
layout = models.HeadLayout.of((4,), 1, 4)
stacked = {f: np.stack([getattr(layout, f)] * num) for f in ("mask", "offset", "valid")}
options = scan.ScanOptions(fit=fit.FitOptions(steps=8, batch_size=16, eval_every=4))
mesh = fit.probe_mesh()
compiled = fit.compiled_fit(mesh)
out = {"devices": mesh.size}

def run(options, depth, seed=0):
    return jobs.train_group(xs, (n, n - 7, n), ys, stacked, 4, options, depth, seed, 0, None)

for depth in ("linear", "mlp1"):
    out[depth] = run(options, depth)
out["compilations"] = [compiled._cache_size()]
out["seed1"] = run(options, "mlp1", seed=1)            # the same shapes: no new compilation
out["compilations"].append(compiled._cache_size())
tight = options.__class__(memory_gib=1e-9, fit=options.fit)
out["tight"] = run(tight, "mlp1")
jobs.BLOCK_BYTES = 1
out["blocks"] = run(options, "mlp1")
labels = sum(y[0].nbytes for y in ys)
out["chunking"] = {"tight": jobs.chunking(tight, num, (d, 256, 4), mesh, n, labels),
                   "blocks": jobs.chunking(options, num, (d, 256, 4), mesh, n, labels)}

# Six inputs (say six checkpoints) of one signature: on 4 devices one call takes 4 whole inputs
# (one a device) and the two left over spread their probes; on 1 device each trains alone.
several = []
for source in range(6):
    r = np.random.default_rng(1 + source)
    xj = [r.normal(size=(n, d)).astype(np.float32) for _ in range(3)]
    yj = [np.argmax(np.einsum("nd,pdk->pnk", x, w), -1)[..., None].astype(np.int32) for x in xj]
    several.append(jobs.Job(xj, (n, n - 7 - source, n), yj, stacked, 4, "mlp1", 0, 0))
sources = fit.compiled_fit_sources(mesh)
before = sources._cache_size()
out["sources"] = jobs.train_jobs(several, options)
out["sources_alone"] = [jobs.train_jobs([job], options)[0] for job in several]
out["sources_again"] = jobs.train_jobs(several[::-1], options)[::-1]
out["source_compilations"] = sources._cache_size() - before
print(json.dumps(out))
"""

FIELDS = ("val_acc", "test_acc", "train_acc", "train_acc_rise")


def _run_script(devices: int, cache) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", GROUPS], cwd=REPO, env=cli_env(devices, cache),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _output(process: subprocess.Popen, timeout: float = 300) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"exit {process.returncode}:\n{err[-4000:]}"
    return out


def _close(a: list[dict], b: list[dict]) -> None:
    """Rows of the same probes, equal up to floating point: a prediction near a tie may flip
    (two samples of the 89 real val rows are 0.0225)."""
    assert len(a) == len(b)
    for name in FIELDS:
        np.testing.assert_allclose([r[name] for r in a], [r[name] for r in b], atol=0.025)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax_cache")


@pytest.fixture(scope="module")
def groups(cache) -> tuple[dict, dict]:
    """The GROUPS script's output on 1 device and on 4 (run at once)."""
    one, four = (json.loads(_output(p).strip().splitlines()[-1])
                 for p in [_run_script(1, cache), _run_script(4, cache)])
    return one, four


def test_four_devices_train_the_probes_as_one_and_compile_once(groups):
    one, four = groups
    assert (one["devices"], four["devices"]) == (1, 4)
    for key in ("linear", "mlp1", "seed1", "tight", "blocks"):
        _close(one[key], four[key])
    # Memory for one probe per device: 5 probes in calls of 4 (one each), the second call
    # padded; blocks of one probe: one call of 8 (2 blocks of 1 a device).
    assert four["chunking"] == {"tight": [4, 1], "blocks": [8, 1]}
    assert one["chunking"] == {"tight": [1, 1], "blocks": [5, 1]}
    # Neither the budget nor the blocks change a probe's result (its key is its index).
    for run in (one, four):
        _close(run["mlp1"], run["tight"])
        _close(run["mlp1"], run["blocks"])
        assert run["mlp1"] != run["seed1"]                        # seeds do differ
        assert len({r["test_acc"] for r in run["mlp1"]}) > 1      # and so do the probes
        assert min(r["test_acc"] for r in run["mlp1"]) > 0.5      # they learn (chance: ~0.25)
        # linear and mlp1 compiled once each; seed 1's call, of the same shapes, reused mlp1's
        assert run["compilations"] == [2, 2]


def test_inputs_spread_over_devices_train_each_probe_as_alone(groups):
    """`scan.train_jobs` puts several inputs' probes (jobs of one signature) in one call, each
    device taking whole inputs: every probe's result is what it gets trained alone, on 1 device
    or 4, and the calls of one shape compile once."""
    one, four = groups
    assert (one["source_compilations"], four["source_compilations"]) == (0, 1)
    for run in (one, four):
        for together, alone, again in zip(run["sources"], run["sources_alone"],
                                          run["sources_again"]):
            _close(together, alone)
            _close(together, again)
    for a, b in zip(one["sources"], four["sources"]):
        _close(a, b)
    tests = {round(r["test_acc"], 3) for rows in four["sources"] for r in rows}
    assert len(tests) > 6                 # the inputs and probes differ


def _collect_workdirs(workdirs, model, steps=(100, 200)) -> None:
    """A tiny-model collection (forced, 48 icml_cpu specs, original semantics and alt 8) under
    <workdir>/collect/step_* for each workdir and step."""
    data = config_files.load("icml_cpu").data
    records = next(generate.generate_split(data, "test", chunk_size=48))
    grammar, layout = program_grammar(data), dataset_config.layout(data)
    part = collect.collect_batch(model, layout, records, grammar, max_steps=data.max_steps,
                                 alts=(8,), forced=True)
    for workdir, step in itertools.product(workdirs, steps):
        meta = {"step": step, "alts": [8], "forced": True, "per_layer": False,
                "conditions": False,
                "layout": {"height": layout.height, "width": layout.width,
                           "n_shown": layout.n_shown}}
        for split in ("train", "val", "test"):
            store.write_split(store.step_dir(workdir, step), split, part, meta)


# `scan_run.run` (what `kareljax scan` runs) of the workdir argv[1], after the command line's
# platform settings; the environment says whether jax.distributed joins several processes.
SCAN = r"""
import sys
from kareljax import platform
platform.configure()
from kareljax.probe import fit, jobs, scan, scan_run
jobs.CPU_SPREAD_PADDING = 0.0   # whole checkpoints per device even where no probe is padded
options = scan.ScanOptions(depths=("linear",), tasks=("facing", "position"), offsets=(0,),
                           seeds=1, fit=fit.FitOptions(steps=4, batch_size=16, eval_every=2))
scan_run.run(sys.argv[1], options, progress=False)
import jax
print("whole-checkpoint calls compiled:", fit.compiled_fit_sources(fit.probe_mesh())._cache_size())
print(jax.process_count(), jax.device_count())
"""


def _scan(workdir, cache, processes: int) -> list[subprocess.Popen]:
    """A scan of `workdir` by one process, or by several (one CPU device each) joined by
    jax.distributed on localhost."""
    port = free_port()
    cluster = lambda i: ({} if processes == 1 else {  # noqa: E731
        "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": str(processes),
        "JAX_PROCESS_ID": str(i)})
    return [subprocess.Popen([sys.executable, "-c", SCAN, str(workdir)], cwd=REPO,
                             env=cli_env(1, cache, **cluster(i)), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for i in range(processes)]


def _finish(processes: list[subprocess.Popen], timeout: float = 300) -> list[tuple[str, str]]:
    """Each process's (stdout, stderr), once all exited 0 having seen as many processes and
    devices."""
    results = [p.communicate(timeout=timeout) for p in processes]
    for p, (out, err) in zip(processes, results):
        assert p.returncode == 0, f"exit {p.returncode}:\n{err[-4000:]}"
        assert out.strip().splitlines()[-1].split() == [str(len(processes))] * 2
    return results


def _whole_checkpoint_calls(out: str) -> int:
    """The `fit.fit_sources` compilations a scan process printed (calls of whole checkpoints)."""
    return int(out.split("compiled:")[1].split()[0])


def _rows(workdir) -> dict:
    rows = [json.loads(line) for line in open(workdir / scan_run.RESULTS_JSONL)]
    keyed = {(r["step"], r["semantics"], r["offset"], r["depth"], r["task"], r["seed"]): r
             for r in rows}
    assert len(keyed) == len(rows)
    return keyed


def test_two_processes_scan_as_one_writes_and_resume(tmp_path, model, cache):
    single, double = tmp_path / "single", tmp_path / "double"
    _collect_workdirs((single, double), model)
    single_run, double_run = [_finish(started) for started in   # all at once
                              [_scan(single, cache, 1), _scan(double, cache, 2)]]
    # One device alone spreads each checkpoint's probes; two devices take a checkpoint each.
    assert _whole_checkpoint_calls(single_run[0][0]) == 0
    assert [_whole_checkpoint_calls(out) for out, _ in double_run] == [1, 1]
    one, two = _rows(single), _rows(double)
    assert sorted(one) == sorted(two) and len(one) == 2 * 2 * 2     # steps x semantics x tasks
    # The samples differ between tasks' positions, so compare each probe with itself.
    _close([one[k] for k in sorted(one)], [two[k] for k in sorted(one)])
    caches = list((double / scan_run.CACHE_DIR).glob("*/step_*.jsonl"))
    assert len(caches) == 2 and not list(double.glob("*.tmp"))

    # Stopped after step 100 (step 200's rows not cached): a rerun trains step 200 only, on
    # both processes, and writes the same results.
    next(c for c in caches if c.name == "step_00000200.jsonl").unlink()
    (double / scan_run.RESULTS_JSONL).unlink()
    rerun = _finish(_scan(double, cache, 2))
    assert "reused the results of steps [100]" in rerun[0][1]
    assert _whole_checkpoint_calls(rerun[0][0]) == 0     # one checkpoint left: probes spread
    again = _rows(double)
    assert sorted(again) == sorted(two)
    _close([two[k] for k in sorted(two)], [again[k] for k in sorted(two)])
