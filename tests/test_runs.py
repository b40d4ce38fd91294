"""`kareljax.load_run`: a run directory from Python, agreeing with what the commands write."""
from __future__ import annotations

import json

import numpy as np
import pytest

import kareljax
from kareljax import cli
from tests.micro import micro_overrides


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    workdir = root / "tiny"
    assert cli.main(["train", "--config", "tiny", "--workdir", str(workdir), "--no-progress",
                     *micro_overrides(root / "data")]) == 0
    assert cli.main(["eval", "--workdir", str(workdir), "--split", "test", "--limit", "20"]) == 0
    return workdir


def test_load_run_gives_config_checkpoints_models_programs_and_states(run_dir):
    run = kareljax.load_run(run_dir)
    assert run.config.train.num_steps == 10 and run.checkpoints() == [10]
    model = run.model()
    specs = run.specs("test", limit=20)
    programs = run.decode(model, specs)
    assert programs.shape == (20, run.config.data.max_program_tokens)
    # The same programs and accuracy as `kareljax eval` wrote for this checkpoint.
    summary, results = run.evaluate(model, specs)
    written = json.loads((run_dir / "eval" / "step_10_test.json").read_text())
    assert summary["correct"] == written["correct"]
    np.testing.assert_array_equal(results["program"], programs)
    assert run.program_text(programs[0]).startswith("def run() {")
    states = run.hidden_states(model, specs, programs)
    assert states.shape == (20, programs.shape[1] - 1, model.embed.features)
    layers = run.hidden_states(model, specs, programs, per_layer=True)
    assert layers.shape[0] == model.n_layers + 1
    np.testing.assert_allclose(layers.mean(0), states, atol=1e-5)
    # Step 0 is the untrained model from the run's seed: other programs' states.
    untrained = run.hidden_states(run.model(0), specs, programs)
    assert not np.allclose(untrained, states)


def test_load_run_names_a_directory_without_a_run(tmp_path):
    from kareljax.train.load import RunNotFoundError
    with pytest.raises(RunNotFoundError):
        kareljax.load_run(tmp_path)


def test_an_execution_order_run_has_no_programs_to_decode(run_dir, tmp_path):
    config = json.loads((run_dir / "config.json").read_text())
    config["data"]["order"] = "execution"
    (tmp_path / "config.json").write_text(json.dumps(config))
    run, trained = kareljax.load_run(tmp_path), kareljax.load_run(run_dir)
    with pytest.raises(ValueError, match=r"execution-order run .* specs\['program'\]"):
        run.decode(trained.model(), trained.specs("test", limit=2))
