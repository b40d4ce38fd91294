"""`kareljax plan`: stages compiled for TPU and GPU targets this host does not have."""
from __future__ import annotations

import importlib.util
import json

import jax
import pytest

from kareljax import config_files
from kareljax.model import sizes
from kareljax.model.transformer import CPU_ATTENTION_SCOPE
from kareljax.plan import compile as compile_lib
from kareljax.plan import flops, run as plan_run, stages, targets

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("libtpu") is None or importlib.util.find_spec("jax_plugins") is None,
    reason="the TPU and GPU compilers are the `aot` extra: pip install -e .[aot]")

FAST = ("train_step", "decode", "collect", "scan")


def tiny(*overrides):
    return config_files.load("configs/tiny.py", list(overrides))


@pytest.fixture(scope="module")
def tiny_rows():
    return plan_run.run(tiny(), ["v5e-4", "h100"], stages=FAST)


def test_tiny_stages_compile_and_fit_on_a_tpu_slice_and_an_h100(tiny_rows):
    assert [(r["target"], r["stage"]) for r in tiny_rows] == [
        (t, s) for t in ("v5e-4", "h100") for s in FAST]
    for r in tiny_rows:
        assert r["compiled"] and r["fits"], r
        assert 0 < r["peak_bytes_per_device"] < r["device_memory_bytes"]
        assert r["flops"] > 0 and r["seconds_roofline"] > 0
    by = {(r["target"], r["stage"]): r for r in tiny_rows}
    assert by["v5e-4", "train_step"]["devices"] == 4          # the mesh is the whole slice
    assert by["v5e-4", "train_step"]["flops_source"] == "xla"  # TPU: XLA's cost analysis
    assert by["h100", "train_step"]["flops_source"] == "formula"  # GPU: none from XLA


def test_the_xla_count_matches_the_formula_for_the_tiny_train_step(tiny_rows):
    row = next(r for r in tiny_rows if r["target"] == "v5e-4" and r["stage"] == "train_step")
    layout_length = 188
    expected = flops.train_step(sizes.SIZES["tiny"], 32, layout_length)
    assert row["flops"] == pytest.approx(expected, rel=0.1)


def _hlo(target_name):
    target = targets.resolve(target_name)
    stage = stages.train_stage(tiny(), target.build_devices(), target.hosts)
    compiled, _, error = compile_lib.compile_stage(stage, target)
    assert error is None, error
    return compiled.as_text()


def test_tpu_and_gpu_compiles_take_the_fused_attention_path():
    """The query-blocked attention is the CPU's; a compile for an accelerator on this CPU host
    must not trace it (the platform is the devices', not `jax.default_backend()`)."""
    assert jax.default_backend() == "cpu"
    assert CPU_ATTENTION_SCOPE in _hlo("cpu")
    assert CPU_ATTENTION_SCOPE not in _hlo("v5e-1")
    assert CPU_ATTENTION_SCOPE not in _hlo("h100")


def test_a_step_too_large_for_one_v5e_chip_is_named_with_a_setting_that_fits():
    config = tiny("train.batch_size=32768")
    [row] = plan_run.run(config, ["v5e-1"], stages=("train_step",))
    assert not row["fits"]
    assert row["setting"].startswith("--config.train.grad_accum=")
    assert row["setting_row"]["fits"]
    assert row["setting_row"]["peak_bytes_per_device"] <= 16 * 2 ** 30


def test_a_batch_the_devices_do_not_divide_is_named_with_the_nearest_that_does():
    [row] = plan_run.run(tiny("train.batch_size=30"), ["v5e-8"], stages=("train_step",))
    assert not row["fits"] and "do not divide" in row["error"]
    assert row["setting"] == "--config.train.batch_size=32"
    assert row["setting_row"]["fits"]


def test_a_multi_host_slice_puts_the_data_axis_across_hosts():
    target = targets.resolve("v4-32")
    devices = target.build_devices()
    assert target.hosts == 4 and {d.process_index for d in devices} == {0, 1, 2, 3}
    stage = stages.train_stage(tiny(), devices, target.hosts)
    compiled, _, error = compile_lib.compile_stage(stage, target)
    assert error is None, error
    mesh = jax.tree.leaves(compiled.input_shardings)[0].mesh
    assert mesh.shape["data"] == 16
    assert {d.process_index for d in mesh.devices.flat} == {0, 1, 2, 3}


def test_the_icml_train_step_flops_agree_with_the_formula():
    """XLA's count for configs/icml.py's model (a smaller batch, which scales the count
    linearly) against docs/scale.md's formula, 5.24e13 per step of 84 x 388."""
    size = sizes.SIZES["icml"]
    assert flops.train_step(size, 84, 388) == pytest.approx(5.24e13, rel=0.005)
    config = config_files.load("configs/icml.py", ["train.batch_size=4"])
    [row] = plan_run.run(config, ["v5e-1"], stages=("train_step",))
    assert row["compiled"] and row["flops_source"] == "xla"
    assert row["flops"] == pytest.approx(flops.train_step(size, 4, 388), rel=0.1)


def test_each_distinct_program_compiles_once(monkeypatch):
    calls = []
    real = compile_lib.compile_stage

    def counting(stage, target):
        calls.append((stage.name, target.name))
        return real(stage, target)

    monkeypatch.setattr(compile_lib, "compile_stage", counting)
    rows = plan_run.run(tiny(), ["v5e-1", "v5e-8"], stages=("decode", "train_step"))
    assert len(rows) == 4 and all(r["fits"] for r in rows)
    # decode runs on one chip: the same program for both slices; the train steps differ.
    assert sorted(calls) == [("decode", "v5e-1"), ("train_step", "v5e-1"),
                             ("train_step", "v5e-8")]


def test_the_command_prints_json_rows_and_exits_by_fit(capsys):
    from kareljax import cli
    status = cli.main(["plan", "--config", "configs/tiny.py", "--target", "h100", "--stage",
                       "decode", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 0
    [row] = rows
    for key in ("target", "stage", "fits", "peak_bytes_per_device", "device_memory_bytes",
                "flops", "seconds_roofline", "flops_source"):
        assert key in row
    assert row["target"] == "h100" and row["stage"] == "decode" and row["fits"] is True


@pytest.mark.parametrize("argv", [["--target", "v9-8"], ["--target", "h100", "--stage", "x"],
                                  ["--target", "h100", "--config.train.batch_size=0"]])
def test_bad_input_exits_2(argv, capsys):
    from kareljax import cli
    assert cli.main(["plan", "--config", "configs/tiny.py", *argv]) == 2
    assert "kareljax plan:" in capsys.readouterr().err


def test_the_planned_batch_has_the_training_batch_shapes_and_dtypes():
    import jax.numpy as jnp
    from kareljax.data import fresh
    config = tiny()
    target = targets.resolve("cpu")
    stage = stages.train_stage(config, target.build_devices(), 1)
    planned = stage.lower().args_info[0][1]
    real = jax.eval_shape(fresh.fresh_batches(config.data, 32, config.train.loss_on),
                          jnp.int32(0), jnp.int32(0))
    for key in ("tokens", "loss_mask", "valid"):
        assert planned[key].shape == (1,) + real[key].shape
        assert planned[key].dtype == real[key].dtype


def test_totals_spread_the_one_device_stages_over_every_device():
    from kareljax.plan import run as plan_run, targets
    devices = targets.resolve("v5e-8").devices
    rows = [{"target": "v5e-8", "stage": "train_step", "devices": devices, "calls": 3600,
             "seconds_roofline": 1.0},
            {"target": "v5e-8", "stage": "decode", "devices": 1, "calls": 450,
             "seconds_roofline": 8.0},
            {"target": "v5e-8", "stage": "collect", "devices": 1, "calls": 450,
             "seconds_roofline": 0.0},
            {"target": "v5e-8", "stage": "scan", "devices": 1, "calls": 36,
             "seconds_roofline": 800.0}]
    (total,) = plan_run.totals(config_files.load("tiny"), rows, mfu=0.5)
    assert total["train_hours"] == pytest.approx(2.0)            # the whole mesh per step
    assert total["collect_hours"] == pytest.approx(2 * 450 * 8 / devices / 3600)
    assert total["scan_hours"] == pytest.approx(2 * 36 * 800 / devices / 3600)
    assert total["device_hours"] == pytest.approx(total["total_hours"] * devices)
