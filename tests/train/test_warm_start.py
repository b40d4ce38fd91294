"""`train.init_from`: a run that begins from another run's checkpoint (parameters only)."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from kareljax.config_files import ConfigError
from kareljax.train import load as load_lib
from kareljax.train import loop
from kareljax.train.metrics import read_metrics
from tests.train.conftest import load, losses


def _params(workdir):
    return jax.tree.leaves(load_lib.load_model(workdir)[1])


def test_a_warm_start_begins_from_the_source_checkpoint(runs, tmp_path, data_dir):
    source = runs["one"]
    workdir = tmp_path / "warm"
    # One update at a negligible learning rate: the parameters stay the source's.
    result = loop.train(load(data_dir, f"train.init_from={source}", "train.init_from_step=8",
                             "train.num_steps=1", "train.warmup_steps=0", "train.lr=1e-12",
                             "train.log_every=1"), workdir, progress_bar=False)
    assert result.step == 1
    started = [r for r in read_metrics(workdir) if r.get("event") == "started"]
    assert started[0]["warm_start"] == str(source / "checkpoints" / "8")
    warm = _params(workdir)
    at_8 = jax.tree.leaves(load_lib.load_model(source, 8)[1])
    for a, b in zip(warm, at_8, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    # Its first loss is the trained source's, not that of a fresh model (loss ~ln(vocab)).
    first = losses(workdir)[1]
    assert first < losses(source)[1] - 0.5
    assert abs(first - losses(source)[9]) < 0.5

    # Once it has a checkpoint, it resumes from its own, whatever init_from says. (A second run
    # in this process, from this same line of code: its own step, traced once.)
    again = loop.train(load(data_dir, f"train.init_from={source}", "train.num_steps=2",
                            "train.warmup_steps=0", "train.lr=1e-12"), workdir,
                       progress_bar=False)
    assert again.step == 2
    events = [r["event"] for r in read_metrics(workdir) if "event" in r]
    assert events[-3:] == ["resumed", "compiled", "finished"]


def test_a_warm_start_from_another_model_is_refused(runs, tmp_path, data_dir):
    with pytest.raises(ConfigError, match=r"train\.init_from: .* differs from this run's"):
        loop.train(load(data_dir, f"train.init_from={runs['one']}", "model.d_model=128"),
                   tmp_path / "other", progress_bar=False)


def test_a_warm_start_from_no_run_names_the_directory(tmp_path, data_dir):
    with pytest.raises(load_lib.RunNotFoundError, match="nowhere"):
        loop.train(load(data_dir, f"train.init_from={tmp_path / 'nowhere'}"),
                   tmp_path / "run", progress_bar=False)


def test_the_long_programs_config_warm_starts_from_quick_on_its_model():
    from kareljax import config_files
    from kareljax.data import dataset_config
    from kareljax.train import train_config
    config = config_files.load("configs/long_programs.py")
    quick = config_files.load("configs/quick.py")
    train_config.validate(config)
    assert config.train.init_from == "runs/quick"
    assert train_config.model_size(config.model) == train_config.model_size(quick.model)
    assert dataset_config.train_lengths(config.data) == (6, 7, 8, 9, 10)
    assert (config.data.min_length, config.data.max_length) == (1, 10)
    assert dataset_config.layout(config.data).max_length <= train_config.model_size(
        config.model).max_len
