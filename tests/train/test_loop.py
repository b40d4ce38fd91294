"""The training loop end to end (in this process): metrics files, stopping on a NaN loss, a workdir
that belongs to another model, resuming on another mesh."""
from __future__ import annotations

import json
import shutil
import signal
import struct

import jax
import numpy as np
import pytest

from kareljax import cli
from kareljax.config_files import ConfigError
from kareljax.train import checkpoints as ckpt_lib
from kareljax.train import loop
from kareljax.train.metrics import read_metrics
from tests.train.conftest import STEPS, load, losses, overrides, restore


def tensorboard_scalars(directory) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} of the TensorBoard event files in `directory` (TFRecord framing:
    length u64, crc u32, Event proto, crc u32)."""
    from tensorboardX.proto import event_pb2
    out: dict[str, dict[int, float]] = {}
    for path in directory.glob("events.out.tfevents.*"):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


def test_metrics_lines_and_tensorboard(runs):
    lines = read_metrics(runs["one"])
    events = [r["event"] for r in lines if "event" in r]
    assert events == ["started", "compiled", "finished"]
    steps = [r for r in lines if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, STEPS + 1))
    assert all(r["tokens_per_s"] > 0 and r["step_time_s"] > 0 for r in steps[1:])
    # Linear decay from step 4 to 0 at STEPS: the last update has 1 of 12 steps left.
    assert steps[-1]["lr"] == pytest.approx(0.003 / (STEPS - 4), rel=1e-4)
    scalars = tensorboard_scalars(runs["one"] / "tensorboard")
    assert {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s"} <= set(scalars)
    assert scalars["train/loss"] == pytest.approx({r["step"]: r["loss"] for r in steps})
    saved = json.loads((runs["one"] / "config.json").read_text())
    assert saved["train"]["num_steps"] == STEPS and saved["model"]["size"] == "tiny"


def test_a_nan_loss_stops_cleanly_keeping_the_last_good_checkpoint(tmp_path, data_dir, capsys):
    workdir = tmp_path / "nan"
    # A huge learning rate: the second update (lr 2.5e29) sends the loss to NaN a step later.
    args = ["train", "--config", "tiny", "--workdir", str(workdir), "--no-progress",
            *(f"--config.{o}" for o in overrides(data_dir, "train.lr=1e30", "train.num_steps=8",
                                                 "train.keep_latest_every=1"))]
    with pytest.warns(UserWarning, match="non-finite loss"):
        status = cli.main(args)
    assert status == 1
    err = capsys.readouterr().err
    assert "the loss became nan" in err and "at step 3" in err
    assert "the last good checkpoint is step 1" in err
    # Checkpoint 2 holds the parameters whose loss was NaN: set aside, not resumed from.
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["1"]
    assert (workdir / "nonfinite_checkpoints" / "2").is_dir()
    lines = read_metrics(workdir)
    assert lines[-1]["event"] == "stopped" and lines[-1]["step"] == 3
    assert all(np.isfinite(r["loss"]) for r in lines if "loss" in r)
    good = restore(workdir, load(data_dir))
    assert good.step == 1
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(good.state))


def test_a_workdir_of_another_model_is_refused(runs, tmp_path, data_dir):
    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copy(runs["one"] / "config.json", workdir / "config.json")
    with pytest.raises(ConfigError, match=r"model\.d_model: 64 there, 128 now"):
        loop.train(load(data_dir, "model.d_model=128"), workdir, progress_bar=False)
    # The same model, its size's dimension written out: the run's checkpoints fit it.
    loop.check_workdir(load(data_dir, "model.d_model=64"), str(workdir))
    with pytest.raises(ConfigError, match=r"model\.n_layers: 2 there, 4 now"):
        loop.check_workdir(load(data_dir, "model.size=small", "model.d_model=64",
                                "model.n_heads=1", "model.d_mlp=256"), str(workdir))


def test_ctrl_c_during_a_save_stops_at_the_next_step_with_it_saved(tmp_path, data_dir,
                                                                   monkeypatch):
    """A SIGINT delivered inside a checkpoint save (where a KeyboardInterrupt could leave orbax's
    background thread waiting forever) lets the save finish; the run stops a step later, saved."""
    real_save, calls = ckpt_lib.Checkpoints.save, []

    def save_interrupted(self, step, *args, **kwargs):
        calls.append(step)
        if step == 4:
            signal.raise_signal(signal.SIGINT)     # the handler runs here, before the save
        return real_save(self, step, *args, **kwargs)

    monkeypatch.setattr(ckpt_lib.Checkpoints, "save", save_interrupted)
    workdir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        loop.train(load(data_dir), workdir, progress_bar=False)
    assert calls == [4, 5]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # put back
    lines = read_metrics(workdir)
    assert (lines[-1]["event"], lines[-1]["step"], lines[-1]["reason"]) == (
        "stopped", 5, "interrupted")
    assert max(r["step"] for r in lines if "loss" in r) == 5
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [4, 5]
    assert restore(workdir, load(data_dir)).step == 5
    assert "the newest checkpoint is step 5" in loop.interrupted_note(str(workdir))


def test_resume_a_four_device_run_on_one_device(runs, tmp_path, data_dir):
    workdir = tmp_path / "run"
    shutil.copytree(runs["four"], workdir)
    result = loop.train(load(data_dir, f"train.num_steps={STEPS + 2}", "train.mesh.data=1"),
                        workdir, progress_bar=False)
    assert result.step == STEPS + 2 and result.mesh.devices.size == 1
    lines = read_metrics(workdir)
    resumed = [r for r in lines if r.get("event") == "resumed"]
    assert len(resumed) == 1 and resumed[0]["step"] == STEPS
    after = losses(workdir)
    new = [after[STEPS + 1], after[STEPS + 2]]
    assert np.isfinite(new).all()
    # About where the four-device run left off (same model, the next batches).
    assert abs(new[0] - after[STEPS]) < 0.5


def test_periodic_eval_with_fresh_data_builds_the_val_split(tmp_path):
    """Fresh on-device batches need no dataset, but `train.eval_every` reads val specs: the run
    builds the dataset first and logs val accuracy every `eval_every` steps."""
    data_dir = tmp_path / "data"
    args = ["train", "--config", "tiny", "--workdir", str(tmp_path / "run"), "--no-progress",
            *(f"--config.{o}" for o in overrides(
                data_dir, "train.data_source=fresh", "train.num_steps=4", "train.eval_every=2",
                "train.eval_examples=8"))]
    assert cli.main(args) == 0
    evals = [r for r in read_metrics(tmp_path / "run") if "val_correct" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(0 <= r[k] <= 1 for r in evals for k in ("val_correct", "val_correct_gen"))
    assert all(1 / 8 <= r["val_distinct"] <= 1 for r in evals)     # 8 val specs
    assert any(data_dir.rglob("*val*.array_record*"))
