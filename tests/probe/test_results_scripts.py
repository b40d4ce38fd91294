"""The scripts beside the figures of docs/results/small_24k (plot_turns.py, plot_grid_frame.py,
plot_pose.py)
run on synthetic runs and plot the numbers the report's summaries define (they call the report's
readers, so a change there must keep them working)."""
import importlib.util
import json
import pathlib

import pytest

from tests.probe.test_report import PNG_MAGIC, _write_run, row

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
                rows.append(row(step=step, semantics=sem, alt=alt, offset=offset, depth="linear",
                                task="turns", seed=0, val_acc=accuracy(step),
                                test_acc=accuracy(step), majority_acc=0.6 if alt < 0 else 0.5))
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


GRID_TASKS = (("facing", 0.6, 0.4, 0.25), ("position", 0.2, 0.1, 0.05))


def _grid_rows(tasks=GRID_TASKS):
    """Current state, linear and 1-layer, (task, accuracy at step 0, later, chance) of `tasks`:
    by default facing 0.6 at step 0 and 0.4 later, position 0.2 then 0.1; chance 0.25 and 0.05."""
    rows = []
    for step in STEPS:
        for depth in ("linear", "mlp1"):
            for task, untrained, trained, chance in tasks:
                accuracy = untrained if step == 0 else trained
                rows.append(row(step=step, semantics="original", alt=-1, offset=-1, depth=depth,
                                task=task, seed=0, val_acc=accuracy, test_acc=accuracy,
                                majority_acc=chance))
    return rows


def test_grid_frame_figure_reads_task_means_and_test_correct(tmp_path):
    plot_grid_frame = _load("plot_grid_frame")
    run, trained = tmp_path / "run", tmp_path / "trained"
    _write_run(run, _grid_rows(), correct_rate={s: 0.1 + 0.008 * s for s in STEPS})
    (trained / "eval").mkdir(parents=True)
    for step, correct in ((50, 0.5), (100, 0.8)):
        (trained / "eval" / f"step_{step}_test.json").write_text(json.dumps({"correct": correct}))
    (trained / "eval" / "step_0_val.json").write_text(json.dumps({"correct": 0.1}))
    rows = plot_grid_frame.report_data.read_results(str(run / "results.jsonl"))
    assert plot_grid_frame.accuracy(rows, 0, "mlp1", None) == pytest.approx(40.0)
    assert plot_grid_frame.accuracy(rows, 100, "mlp1", "facing") == pytest.approx(40.0)
    assert plot_grid_frame.accuracy(rows, 50, "linear", None, "majority_acc") == pytest.approx(15)
    correct = plot_grid_frame.test_correct(str(trained))
    assert correct[100] == pytest.approx(80.0)
    assert correct.get(0) is None          # no test summary of step 0 (a val one only)
    out = tmp_path / "grid.png"
    plot_grid_frame.figure(str(run), str(trained), str(out))
    assert _is_png(out)


def test_pose_figure_draws_its_six_tasks(tmp_path):
    from kareljax.probe import labels
    plot_pose = _load("plot_pose")
    drawn = [task for lines in plot_pose.PANELS.values() for _, task, _ in lines]
    assert set(drawn) <= set(labels.TASK_NAMES) and len(drawn) == 6
    run, trained = tmp_path / "run", tmp_path / "trained"
    _write_run(run, _grid_rows([(task, 0.5, 0.3, 0.25) for task in drawn]),
               correct_rate={s: 0.1 + 0.008 * s for s in STEPS})
    (trained / "eval").mkdir(parents=True)
    (trained / "eval" / "step_100_test.json").write_text(json.dumps({"correct": 0.8}))
    out = tmp_path / "pose.png"
    plot_pose.figure(str(run), str(trained), str(out))
    assert _is_png(out)
