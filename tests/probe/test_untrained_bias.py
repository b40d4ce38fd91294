"""docs/results/untrained_bias/measure.py (the README's section "Why the untrained model reads the
starting pose") on a tiny model and a few specs: finite positive changes, none when nothing is
turned, and the robot turned in the grid asked for only."""
import importlib.util
import pathlib

import numpy as np
import pytest

from kareljax import config_files
from kareljax.data import dataset_config, tokens

SCRIPT = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "results" / "untrained_bias"
          / "measure.py")


def _load():
    spec = importlib.util.spec_from_file_location("untrained_bias_measure", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def measure():
    return _load()


@pytest.fixture(scope="module")
def tiny():
    """configs/small.py's data (4x4 interior, 5 shown examples) with a 2-block model of 32."""
    config = config_files.load("configs/small.py")
    config.model.d_model, config.model.n_heads, config.model.d_mlp = 32, 1, 64
    config.model.rotary_dim = 16
    return config


@pytest.fixture(scope="module")
def specs(measure, tiny):
    return measure.test_specs(tiny, 6, chunk_size=10)


def test_specs_are_prompts_with_one_robot_per_grid(measure, tiny, specs):
    layout = dataset_config.layout(tiny.data)
    assert specs.shape == (6, layout.prompt_length)
    assert (specs[:, layout.program_start] == tokens.OPEN).all()
    cells = specs[:, layout.cell_positions().reshape(-1)].reshape(6, layout.n_shown * 2, -1)
    hero = (cells >= tokens.HERO0) & (cells < tokens.HERO0 + 4)
    assert (hero.sum(-1) == 1).all()


def test_turn_robot_turns_only_that_grids_robot(measure, tiny, specs):
    layout = dataset_config.layout(tiny.data)
    positions = layout.cell_positions()[0, 0].reshape(-1)
    turned = measure.turn_robot(specs, positions)
    changed = turned != specs
    assert (changed.sum(1) == 1).all()                       # one token per spec
    where = np.nonzero(changed)[1]
    assert np.isin(where, positions).all()
    before, after = specs[changed], turned[changed]
    assert ((after - tokens.HERO0) == (before - tokens.HERO0 + 1) % 4).all()
    assert (measure.turn_robot(specs, positions, by=0) == specs).all()
    assert (measure.turn_robot(specs, positions, by=4) == specs).all()


def test_perturbation_ratio_positive_finite_and_zero_for_nothing(measure, tiny, specs):
    result = measure.perturbation_ratio(tiny, 2, 0, specs)
    n_shown = tiny.data.n_shown
    assert len(result["input"]) == len(result["output"]) == n_shown
    assert len(result["by_position"]) == 2 * n_shown
    assert len(result["layer_ratio"]) == 2
    values = np.array(result["input"] + result["output"] + result["layer_ratio"]
                      + [result["ratio"], result["ratio_median"]])
    assert np.isfinite(values).all() and (values > 0).all()
    assert result["none"] == 0.0
    assert result["ratio"] == pytest.approx(result["input"][0] / result["output"][-1])
    assert result["by_position"][0] == result["input"][0]
    assert result["by_position"][-1] == result["output"][-1]
    # a different seed is a different model
    assert measure.perturbation_ratio(tiny, 2, 1, specs)["input"] != result["input"]


def test_specs_must_be_prompts(measure, tiny, specs):
    with pytest.raises(ValueError, match="prompt"):
        measure.perturbation_ratio(tiny, 2, 0, specs[:, :-1])
