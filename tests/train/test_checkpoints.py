"""Checkpoints: what is kept, a damaged newest checkpoint falls back to the one before with a
warning naming it, a half-written one is ignored."""
from __future__ import annotations

import logging
import shutil

import jax
import numpy as np
import pytest

from kareljax.train.checkpoints import CheckpointReadError, CorruptCheckpointWarning
from tests.checkpoint_damage import truncate_arrays
from tests.train.conftest import load, restore


def step_dirs(workdir) -> list[int]:
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def test_permanent_and_rolling_checkpoints_are_kept(runs):
    # checkpoint_every 8 (kept), keep_latest_every 4 (only the newest two of all are kept).
    assert step_dirs(runs["one"]) == [8, 12, 16]


def _garble_data_state(step_dir):
    files = [p for p in (step_dir / "data").rglob("*") if p.is_file() and p.suffix != ".txt"]
    assert files
    for p in files:
        p.write_text('{"next_index": ')


@pytest.mark.parametrize("damage", [truncate_arrays, _garble_data_state])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous(runs, tmp_path, data_dir, damage):
    workdir = tmp_path / "run"
    shutil.copytree(runs["one"], workdir)
    damage(workdir / "checkpoints" / "16")
    config = load(data_dir)
    with pytest.warns(CorruptCheckpointWarning, match=r"checkpoints/16 does not read back"):
        restored = restore(workdir, config)
    assert restored.step == 12 and int(restored.state["step"]) == 12
    assert restored.data["iterator"]["next_index"] == 12
    assert step_dirs(workdir) == [8, 12]
    assert (workdir / "corrupt_checkpoints" / "16").is_dir()
    expected = restore(runs["one"], config, step=12)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 restored.state, expected.state)


def test_a_half_written_checkpoint_is_ignored(runs, tmp_path, data_dir):
    workdir = tmp_path / "run"
    shutil.copytree(runs["one"], workdir)
    # What a save killed midway leaves: orbax's temporary folder, never renamed to its step.
    partial = workdir / "checkpoints" / "20.orbax-checkpoint-tmp-1234"
    shutil.copytree(workdir / "checkpoints" / "16", partial)
    truncate_arrays(partial)
    restored = restore(workdir, load(data_dir))
    assert restored.step == 16


def test_when_nothing_reads_back_nothing_is_moved(runs, tmp_path, data_dir):
    workdir = tmp_path / "run"
    shutil.copytree(runs["one"], workdir)
    # Another model's state cannot be read from any of them: an error, not a silent fresh start.
    with pytest.raises(CheckpointReadError, match="no checkpoint .* reads back"):
        restore(workdir, load(data_dir, "model.d_model=128"))
    assert step_dirs(workdir) == [8, 12, 16] and not (workdir / "corrupt_checkpoints").exists()


def test_readers_move_and_delete_nothing(runs, tmp_path):
    # eval/collect/scan read checkpoints while a trainer may still be saving into the directory:
    # its temporary folder stays, and a newest step that does not read back is skipped, not moved.
    from kareljax.train import load as load_run
    workdir = tmp_path / "run"
    shutil.copytree(runs["one"], workdir)
    saving = workdir / "checkpoints" / "20.orbax-checkpoint-tmp-1234"
    shutil.copytree(workdir / "checkpoints" / "16", saving)
    truncate_arrays(workdir / "checkpoints" / "16")
    assert load_run.checkpoint_steps(workdir) == [8, 12, 16]
    with pytest.warns(CorruptCheckpointWarning, match=r"checkpoints/16 does not read back"):
        step, _ = load_run.load_model(workdir)
    assert step == 12
    assert step_dirs(workdir) == [8, 12, 16] and saving.is_dir()
    assert not (workdir / "corrupt_checkpoints").exists()


def test_readers_open_runs_without_orbax_s_read_only_notice(runs, caplog):
    # eval/collect/scan open a read-only manager per checkpoint; orbax's warning about it would
    # be printed between every progress-bar update.
    from kareljax.train.checkpoints import Checkpoints
    with caplog.at_level(logging.WARNING, logger="absl"):
        Checkpoints(runs["one"] / "checkpoints", read_only=True).close()
        logging.getLogger("absl").warning("Given directory is read only=%s", "x")
        logging.getLogger("absl").warning("another orbax warning")
    messages = [r.getMessage() for r in caplog.records]
    assert "another orbax warning" in messages
    assert not [m for m in messages if "read only" in m]


def _bytes_read() -> int:
    """Bytes this process has read from files so far (Linux: /proc/self/io)."""
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar"))


def test_readers_read_the_parameters_not_the_optimizer_state(runs, data_dir):
    """eval, collect and warm starts load a checkpoint's parameters only: AdamW's moments, twice
    the parameters' bytes, stay unread (orbax's partial restore)."""
    from kareljax.train import load as load_run
    config = load(data_dir)
    restore(runs["one"], config)                         # opened once: metadata, imports
    before = _bytes_read()
    full = restore(runs["one"], config)
    full_bytes, before = _bytes_read() - before, _bytes_read()
    step, model = load_run.load_model(runs["one"])
    params_bytes = _bytes_read() - before
    assert step == full.step
    assert params_bytes < 0.5 * full_bytes, (params_bytes, full_bytes)
    from flax import nnx
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 nnx.state(model, nnx.Param), full.state["params"])
