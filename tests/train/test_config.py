"""Training configs: the preset files, validation naming the bad option, the CLI rejecting bad
values before any compute, the learning-rate schedules and the mesh's sharding rules."""
from __future__ import annotations

import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from kareljax import cli, config_files
from kareljax.config_files import ConfigError
from kareljax.model import SIZES
from kareljax.train import mesh as mesh_lib
from kareljax.train import optimizer, train_config


@pytest.mark.parametrize("name", ["tiny", "small", "icml"])
def test_preset_configs_validate(name):
    config = config_files.load(f"configs/{name}.py")
    assert list(config.keys())[0] == "data"
    train_config.validate(config)
    assert config.model.size == name


@pytest.mark.parametrize("name, world, steps", [("small_6x6", 8, 14_000), ("small_8x8", 10, 5_000),
                                               ("small_24k", 6, 24_000)])
def test_variants_of_small_change_only_the_world_and_schedule(name, world, steps):
    config, small = config_files.load(f"configs/{name}.py"), config_files.load("configs/small.py")
    train_config.validate(config)
    assert (config.data.world_height, config.data.world_width) == (world, world)
    assert config.train.num_steps == steps
    assert config.model.to_dict() == small.model.to_dict()
    same = lambda c: {k: v for k, v in c.items() if k not in ("world_height", "world_width",
                                                              "num_steps", "checkpoint_every",
                                                              "eval_every")}
    assert same(config.data.to_dict()) == same(small.data.to_dict())
    assert same(config.train.to_dict()) == same(small.train.to_dict())


def test_icml_config_is_the_paper_run():
    config = config_files.load("icml")
    t = config.train
    assert (t.lr, t.warmup_steps, t.num_steps, t.seed, t.checkpoint_every) == (5e-6, 6000, 80000, 8,
                                                                           2000)
    assert (t.b1, t.b2, t.eps, t.weight_decay, t.schedule) == (0.9, 0.999, 1e-8, 0.0, "linear")
    assert config.data.preset == "icml" and config.model.size == "icml"
    slots = 372 + config.data.max_program_tokens       # one example: prompt + program
    # Within 6 % of the original's 16 x 2048 tokens (5.3 % under), split by every common device count.
    assert abs(t.batch_size * slots - 16 * 2048) <= 0.06 * 16 * 2048
    assert all(t.batch_size % devices == 0 for devices in (1, 2, 4, 8, 16))


@pytest.mark.parametrize("override, option", [
    ("train.schedule=cosine", "train.schedule"),
    ("model.dtype=float16", "model.dtype"),
    ("model.size=huge", "model.size"),
    ("model.n_heads=5", "model.n_heads"),
    ("model.max_len=100", "model.max_len"),
    ("train.grad_accum=3", "train.grad_accum"),
    ("train.lr=-1.0", "train.lr"),
    ("train.b2=1.0", "train.b2"),
    ("train.warmup_steps=5000", "train.warmup_steps"),
    ("train.loss_on=prompt", "train.loss_on"),
    ("train.data_source=web", "train.data_source"),
    ("train.mesh.fsdp=0", "train.mesh.fsdp"),
    ("train.log_every=0", "train.log_every"),
])
def test_validate_names_the_option(override, option):
    with pytest.raises(ConfigError, match=rf"^{option}:"):
        train_config.validate(config_files.load("tiny", [override]))


def test_cli_rejects_bad_values_before_compute(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert cli.main(["train", "--config", "tiny", "--workdir", str(workdir),
                     "--config.train.schedule=cosine"]) == 2
    assert "train.schedule" in capsys.readouterr().err
    assert cli.main(["train", "--config", "tiny", "--workdir", str(workdir),
                     "--config.train.batch_size=seven"]) == 2
    assert "train.batch_size" in capsys.readouterr().err
    assert not workdir.exists()
    afile = tmp_path / "notes.txt"            # a file where the run directory should be
    afile.write_text("kept")
    assert cli.main(["train", "--config", "tiny", "--workdir", str(afile)]) == 2
    assert f"--workdir {afile} is a file, not a run directory" in capsys.readouterr().err
    assert afile.read_text() == "kept"


def test_batch_must_split_over_the_mesh():
    config = config_files.load("tiny", ["train.batch_size=3", "train.mesh.data=2"])
    with pytest.raises(ConfigError, match="^train.(batch_size|mesh)"):
        from kareljax.train import loop
        loop.build_mesh(config.train)


def test_model_fields_override_the_size():
    config = config_files.load("tiny", ["model.d_model=128", "model.n_layers=3"])
    size = train_config.model_size(config.model)
    assert (size.d_model, size.n_layers, size.n_heads) == (128, 3, SIZES["tiny"].n_heads)


def _lr(schedule_name, **kw):
    config = config_files.load("tiny", [f"train.schedule={schedule_name}"] +
                               [f"train.{k}={v}" for k, v in kw.items()])
    schedule = optimizer.schedule(config.train)
    return lambda step: float(schedule(step))


def test_linear_schedule():
    lr = _lr("linear", lr=1.0, warmup_steps=10, num_steps=110)
    assert lr(0) == 0.0 and lr(5) == pytest.approx(0.5) and lr(10) == pytest.approx(1.0)
    assert lr(60) == pytest.approx(0.5) and lr(110) == pytest.approx(0.0)
    assert _lr("linear", lr=1.0, warmup_steps=0, num_steps=10)(0) == pytest.approx(1.0)


def test_as_run_schedule_warms_up_over_60_percent_and_never_decays():
    lr = _lr("as_run", lr=1.0, num_steps=80_000)
    assert lr(24_000) == pytest.approx(0.5) and lr(48_000) == pytest.approx(1.0)
    assert lr(79_999) == pytest.approx(1.0) and lr(200_000) == pytest.approx(1.0)


def test_axis_sizes():
    assert mesh_lib.axis_sizes(-1, 1, 8) == (8, 1)
    assert mesh_lib.axis_sizes(2, -1, 8) == (2, 4)
    assert mesh_lib.axis_sizes(1, 1, 8) == (1, 1)           # a subset, in one process
    with pytest.raises(ConfigError, match="train.mesh"):
        mesh_lib.axis_sizes(1, 1, 8, multi_process=True)
    with pytest.raises(ConfigError, match="train.mesh.data"):
        mesh_lib.axis_sizes(3, -1, 8)
    with pytest.raises(ConfigError, match="train.mesh"):
        mesh_lib.axis_sizes(4, 4, 8)


def test_param_spec_shards_the_largest_divisible_axis():
    assert mesh_lib.param_spec((64, 256), 2) == P(None, "fsdp")
    assert mesh_lib.param_spec((77, 64), 2) == P(None, "fsdp")    # 77 is odd
    assert mesh_lib.param_spec((64, 64), 4) == P("fsdp", None)    # the first among equals
    assert mesh_lib.param_spec((77,), 2) == P()                    # nothing divides: replicated
    assert mesh_lib.param_spec((), 2) == P()
    assert mesh_lib.param_spec((64, 256), 1) == P()


def test_state_shardings_follow_the_rules():
    import jax
    mesh = mesh_lib.make_mesh(1, 1)
    tree = {"w": np.zeros((4, 6)), "b": np.zeros(())}
    shardings = mesh_lib.state_shardings(tree, mesh)
    assert shardings["w"].spec == P() and shardings["w"].mesh.shape == {"data": 1, "fsdp": 1}
    assert mesh_lib.batch_sharding(mesh, 3, 1).spec == P(None, ("data", "fsdp"), None)
    assert jax.tree.structure(shardings) == jax.tree.structure(tree)
