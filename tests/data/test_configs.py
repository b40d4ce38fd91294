"""Presets as ml_collections configs, `--config.x=y` overrides and validation naming the option."""
import pytest

from kareljax import config_files
from kareljax.data import dataset_config, presets


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_every_preset_file_loads_and_validates(name):
    config = config_files.load(f"configs/{name}.py")
    dataset_config.validate(config.data)
    assert dataset_config.dataset_name(config.data) == name
    assert config.data.preset == name


def test_preset_values_follow_the_spec():
    icml, colm, cond = presets.icml(), presets.colm(), presets.cond()
    assert (icml.num_train, icml.num_val, icml.num_test) == (1_000_000, 10_000, 10_000)
    assert (icml.min_length, icml.max_length, icml.train_lengths) == (1, 10, (6, 7, 8, 9, 10))
    assert dataset_config.program_options(icml).weights.tolist() == [5, 3, 3, 2, 2, 0, 0]
    assert colm.min_length == colm.max_length == 15 and colm.num_train > 0
    assert dataset_config.program_options(colm).weights.tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert dataset_config.program_options(cond).weights.tolist() == [5, 3, 3, 2, 2, 1, 1]
    assert dataset_config.layout(icml).max_length < 600
    assert presets.icml_cpu().world_height == 6


def test_overrides_keep_types_and_change_the_name():
    config = config_files.load("icml", ["data.seed=3", "data.train_lengths=6,7", "data.uniform=True"])
    assert config.data.seed == 3 and config.data.train_lengths == (6, 7) and config.data.uniform
    name = dataset_config.dataset_name(config.data)
    assert name.startswith("icml_") and name != "icml"
    # data_dir does not change what a dataset holds
    moved = config_files.load("icml", ["data.data_dir=/elsewhere"])
    assert dataset_config.dataset_name(moved.data) == "icml"


@pytest.mark.parametrize("overrides, option", [
    (["data.min_length=11"], "min_length"),
    (["data.num_val=3"], "num_val"),
    (["data.num_train=0"], "num_train"),
    (["data.max_program_tokens=5"], "max_program_tokens"),
    (["data.no_conditionals=False", "data.max_length=1", "data.train_lengths=()"], "max_length"),
    (["data.no_conditionals=False", "data.n_shown=1"], "n_shown"),
    (["data.train_lengths=(11,)"], "train_lengths"),
    (["data.world_height=2"], "world_height"),
    (["data.n_shown=11"], "n_shown"),
])
def test_bad_values_are_rejected_naming_the_option(overrides, option):
    with pytest.raises(dataset_config.ConfigError, match=option):
        dataset_config.validate(config_files.load("icml", overrides).data)


@pytest.mark.parametrize("override, words", [
    ("data.nope=1", "unknown option"), ("data.seed=x", "type"), ("nope.seed=1", "not a config section"),
    ("data.seed", "PATH=VALUE")])
def test_bad_overrides_name_themselves(override, words):
    with pytest.raises(dataset_config.ConfigError, match=words) as e:
        config_files.load("icml", [override])
    assert override.split("=")[0] in str(e.value)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(dataset_config.ConfigError, match="icml_cpu"):
        config_files.resolve("icml_gpu")


def test_split_overrides_from_a_command_line():
    rest, overrides = config_files.split_overrides(
        ["data", "build", "--config", "icml", "--config.data.seed=4", "--config.data.uniform", "True"])
    assert rest == ["data", "build", "--config", "icml"]
    assert overrides == ["data.seed=4", "data.uniform=True"]
