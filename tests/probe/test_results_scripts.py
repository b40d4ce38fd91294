"""docs/results/small_24k/plot_turns.py, the script beside the turn-count figures, runs on a
synthetic run and plots the numbers the report's summaries define (it calls the report's readers,
so a change there must keep it working)."""
import importlib.util
import pathlib

import pytest

from tests.probe.test_report import PNG_MAGIC, _write_run

SCRIPTS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "results" / "small_24k"
STEPS = (0, 50, 100)
# (semantics, alt) -> test accuracy at step s; chance (majority_acc) 0.6 for the original, 0.5
# for the alternatives
ACCURACY = {("original", -1): lambda s: 0.7 + 0.002 * s,
            ("alt8", 8): lambda s: 0.7,
            ("alt11", 11): lambda s: 0.7 + 0.001 * s}


def _load(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _turns_rows():
    rows = []
    for step in STEPS:
        for (sem, alt), accuracy in ACCURACY.items():
            for offset in (-1, 0):
                rows.append({"step": step, "semantics": sem, "alt": alt, "offset": offset,
                             "depth": "linear", "task": "turns", "seed": 0,
                             "val_acc": accuracy(step), "test_acc": accuracy(step),
                             "majority_acc": 0.6 if alt < 0 else 0.5, "best_step": 10,
                             "train_samples": 100, "val_samples": 50, "test_samples": 50})
    return rows


@pytest.fixture(scope="module")
def turns_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("scripts") / "run"
    _write_run(directory, _turns_rows(), correct_rate={s: 0.1 + 0.008 * s for s in STEPS})
    return directory


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC


def test_seed_differences_are_orig_minus_mean_alt_above_chance(turns_run, tmp_path):
    plot_turns = _load("plot_turns")
    diff = plot_turns.differences(str(turns_run))
    for offset in (-1, 0):
        # above chance: original 0.1 + 0.002 s, alternatives' mean 0.2 + 0.0005 s
        assert diff[offset] == pytest.approx({s: 100 * (0.0015 * s - 0.1) for s in STEPS})
    out = tmp_path / "seeds.png"
    plot_turns.seeds_figure(str(out), f"seed 0={turns_run}", f"seed 1={turns_run}")
    assert _is_png(out)


def test_orig_vs_alt_figure_draws_from_forced_and_own_program_runs(turns_run, tmp_path):
    out = tmp_path / "turns.png"
    _load("plot_turns").orig_vs_alt_figure(str(turns_run), str(turns_run), str(out))
    assert _is_png(out)
