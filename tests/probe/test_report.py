"""The report: a synthetic run directory (results, metrics, config, test collections) in, figures
and report.md out, with the numbers checked against numpy."""
import argparse
import json
import os
import pathlib
import re

import numpy as np
import pytest

from kareljax.commands import report as report_command
from kareljax.probe import report, report_data, report_summaries

STEPS = (0, 50, 100)
TOTAL_STEPS = 100
SEMANTICS = (("original", -1), ("alt0", 0))
OFFSETS = (-1, 0, 1)
DEPTHS = ("linear", "mlp1", "mlp2")
TASKS = ("facing", "front_wall")
SEEDS = (0, 1)
CORRECT_RATE = {0: 0.02, 50: 0.4, 100: 0.8}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The fields of a `kareljax scan` row beyond its key (step, semantics, offset, depth, task, seed).
ROW_DEFAULTS = {"alt": -1, "val_acc": 0.5, "test_acc": 0.5, "best_step": 10, "train_acc": 0.5,
                "train_acc_rise": 0.0, "majority_acc": 0.25, "train_samples": 100,
                "val_samples": 50, "test_samples": 50, "train_available": 100,
                "val_available": 50, "test_available": 50}


def row(**fields):
    """A probe row as `kareljax scan` writes it: `fields` over `ROW_DEFAULTS`."""
    return {**ROW_DEFAULTS, **fields}


def _rows(rng, layer=None):
    rows = []
    for step in STEPS:
        for sem, alt in SEMANTICS:
            for offset in OFFSETS:
                for d, depth in enumerate(DEPTHS):
                    for task in TASKS:
                        for seed in SEEDS:
                            base = 0.3 + 0.4 * step / TOTAL_STEPS + 0.05 * d
                            acc = base - (0.15 if sem != "original" else 0) + rng.normal(0, 0.05)
                            probe = row(step=step, semantics=sem, alt=alt, offset=offset,
                                        depth=depth, task=task, seed=seed, val_acc=float(acc),
                                        test_acc=float(np.clip(acc, 0, 1)))
                            if layer is not None:
                                probe["layer"] = layer
                            rows.append(probe)
    return rows


def _write_run(directory, rows, collect=True, correct_rate=CORRECT_RATE):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "results.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    with open(directory / "metrics.jsonl", "w") as f:
        f.write(json.dumps({"event": "start", "step": 0, "time": 0.0}) + "\n")
        for step in range(1, TOTAL_STEPS + 1, 5):
            f.write(json.dumps({"step": step, "time": 0.0, "loss": 3.0 / step, "lr": 1e-3}) + "\n")
        for step in (25, 50, 75, 100):
            f.write(json.dumps({"step": step, "time": 0.0, "val_correct": step / 120,
                                "val_correct_gen": step / 130, "val_exact": 0.0,
                                "val_distinct": step / 200}) + "\n")
    with open(directory / "config.json", "w") as f:
        json.dump({"train": {"num_steps": TOTAL_STEPS, "batch_size": 8}}, f)
    if not collect:
        return
    (directory / "eval").mkdir()
    with open(directory / "eval" / f"step_{TOTAL_STEPS}_test.json", "w") as f:
        json.dump({"correct": 0.5, "noop_floor": 0.109, "reference_distinct": 0.6125,
                   "best_constant": {"code": "def run() { move() }", "correct": 0.154,
                                     "searched": "all 155 programs"}}, f)
    rng = np.random.default_rng(1)
    for step in STEPS:
        sd = directory / "collect" / f"step_{step:08d}"
        sd.mkdir(parents=True)
        n = 200
        correct = rng.random(n) < correct_rate[step]
        # Programs: one for every spec at step 0 (babbling), then more and more varied ones.
        kinds = {0: 1, 50: 7, 100: 60}[step]
        program = np.zeros((n, 6), np.uint8)
        program[:, 0] = 1
        program[:, 1:3] = np.stack([np.arange(n) % kinds // 8, np.arange(n) % kinds % 8], 1) + 2
        np.savez(sd / "test-00000.npz", correct=correct, program=program,
                 correct_gen=correct & (rng.random(n) < 0.9),
                 generated_length=rng.integers(1, 11, n).astype(np.int32),
                 reference_length=rng.integers(1, 11, n).astype(np.int32))
        with open(sd / "index.json", "w") as f:
            json.dump({"step": step, "alts": [0], "splits": {"test": {
                "specs": n, "shards": ["test-00000.npz"]}}}, f)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("run") / "toy"
    _write_run(directory, _rows(np.random.default_rng(0)))
    return directory


def _valid_png(path):
    import matplotlib.image

    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def _independent(directory):
    """Table 1 cells and R² recomputed from the files with plain numpy (balanced fixture: the mean
    over tasks of seed means is the plain mean)."""
    rows = [json.loads(line) for line in open(directory / "results.jsonl")]

    def mean(step, offset, depth, sem="original"):
        return np.mean([r["test_acc"] for r in rows if r["step"] == step and r["offset"] == offset
                        and r["depth"] == depth and r["semantics"] == sem])

    gen, distinct = {}, {}
    for step in STEPS:
        with np.load(directory / "collect" / f"step_{step:08d}" / "test-00000.npz") as data:
            gen[step] = data["correct"].mean()
            distinct[step] = len({row.tobytes() for row in data["program"]}) / len(data["program"])
    r2 = {}
    for depth in DEPTHS:
        x = np.array([gen[s] for s in STEPS])
        y = np.array([mean(s, -1, depth) for s in STEPS])
        r2[depth] = np.corrcoef(x, y)[0, 1] ** 2
    return mean, gen, r2, distinct


def test_report_writes_figures_and_numbers(run_dir, capsys):
    status = report_command.run(argparse.Namespace(workdir=str(run_dir), out=None))
    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    out = run_dir / "report"
    for name in ("progress", "by_length", "orig_vs_alt", "correlation"):
        assert summary["figures"][name] == str(out / f"{name}.png")
        _valid_png(out / f"{name}.png")
    assert not (out / "layers.png").exists()
    md = (out / "report.md").read_text()
    for name in ("progress", "orig_vs_alt", "correlation"):
        assert f"]({name}.png)" in md                 # relative links

    mean, gen, r2, distinct = _independent(run_dir)
    # Table 1: next state (offset 0), 1-layer MLP, last checkpoint; and the paper's number beside.
    assert report.pct(mean(100, 0, "mlp1")) in md
    assert f"{report.pct(mean(100, -1, 'linear'))} (paper 63.2 %)" in md
    assert summary["table1"]["0/mlp1"] == pytest.approx(mean(100, 0, "mlp1"))
    # The constant-program floors from `kareljax eval`'s test summary.
    assert "`pick_marker()` scores 10.9 %" in md and "`def run() { move() }`" in md
    # Baseline (step 0) beside the last checkpoint.
    assert f"step 0: {report.pct(mean(0, -1, 'mlp2'))}" in md
    # R² per depth, as numpy computes it.
    for depth in DEPTHS:
        assert summary["r2"][depth] == pytest.approx(r2[depth], abs=1e-9)
    assert "| linear | 3 |" in md and f"{r2['linear']:.3f}" in md
    # orig - alt at the current state: the fixture's alternatives are ~15 points worse.
    diff = mean(100, -1, "mlp2") - mean(100, -1, "mlp2", "alt0")
    assert report.points(diff) in md
    # Final generation accuracy at the top, from the collections.
    assert f"correct {report.pct(gen[100])}" in md
    assert summary["final_generation"]["correct"] == pytest.approx(gen[100])
    # Distinct programs per checkpoint (1 of 200 at step 0, 7, 60), and the references' share.
    assert [distinct[s] for s in STEPS] == [1 / 200, 7 / 200, 60 / 200]
    for step in STEPS:
        with np.load(run_dir / "collect" / f"step_{step:08d}" / "test-00000.npz") as data:
            correct_gen = data["correct_gen"].mean()
        assert (f"| {step} | {report.phase_of(step, TOTAL_STEPS)} | {report.pct(gen[step])} | "
                f"{report.pct(correct_gen)} | {report.pct(distinct[step])} |") in md
    assert "the reference programs: 61.3 %." in md
    # Each checkpoint's row ends with the train samples its probes rest on (100 in this run)
    # and which programs were probed (the model's own here: nothing was forced).
    assert "| probe train samples | programs probed |" in md
    for step in STEPS:
        assert re.search(rf"\| {step} \|[^\n]*\| 100 \| own \|\n", md), step
    assert "Programs probed:" not in md
    # By reference length at the last step, as numpy counts it.
    with np.load(run_dir / "collect" / f"step_{TOTAL_STEPS:08d}" / "test-00000.npz") as data:
        lengths, right, right_gen, made = (data[k] for k in (
            "reference_length", "correct", "correct_gen", "generated_length"))
    assert f"### By program length (step {TOTAL_STEPS}, test split)" in md
    for n in np.unique(lengths):
        at = lengths == n
        assert (f"| {n} | {at.sum()} | {report.pct(right[at].mean())} | "
                f"{report.pct(right_gen[at].mean())} | {made[at].mean():.2f} | ") in md
    # The progress figure has the diversity panel (1.6 in) between accuracy and content (2.6 in
    # each, and the loss): 9.4 in at 110 dpi.
    import matplotlib.image
    assert matplotlib.image.imread(out / "progress.png").shape[0] == round(9.4 * 110)
    assert "Per-layer states were not collected" in md
    assert "babbling" in md and "semantics acquisition" in md
    assert "Samples per probe (train / val / test): 100 / 50 / 50 per checkpoint." in md


def test_summaries_match_definitions():
    rows = [row(step=5, semantics=s, offset=-1, depth="linear", task=t, seed=k, test_acc=v)
            for s, t, k, v in [("original", "a", 0, 0.2), ("original", "a", 1, 0.4),
                               ("original", "b", 0, 0.9), ("alt0", "a", 0, 0.1),
                               ("alt0", "b", 0, 0.3), ("alt1", "a", 0, 0.5), ("alt1", "b", 0, 0.5)]]
    # Seeds within a task first, then tasks: (0.3 + 0.9) / 2, not the plain mean of 3 rows.
    assert report.semantic_content(rows) == {"linear": {5: pytest.approx(0.6)}}
    cell = report.orig_vs_alt(rows, 5)[(-1, "linear")]
    assert cell["alternative"] == pytest.approx((0.2 + 0.5) / 2)
    assert cell["difference"] == pytest.approx(0.6 - 0.35)
    slope, intercept, r2 = report.fit_line([0, 1, 2], [1, 3, 5])
    assert (slope, intercept, r2) == pytest.approx((2, 1, 1))
    assert report.phase_of(49, 100) == "babbling" and report.phase_of(80, 100).startswith("sem")


def test_tasks_beyond_spec_stay_out_of_semantic_content_beside_paper_tasks():
    rows = [row(step=5, semantics="original", offset=-1, depth="linear", task=t, seed=0,
                test_acc=v)
            for t, v in [("facing", 0.4), ("turns", 0.9), ("initial_facing", 0.8)]]
    assert report.semantic_content(rows) == {"linear": {5: pytest.approx(0.4)}}
    only = [r for r in rows if r["task"] == "turns"]
    assert report.semantic_content(only) == {"linear": {5: pytest.approx(0.9)}}
    assert {r["task"] for r in report.per_task_table(rows, 5, None)} == {
        "facing", "turns", "initial_facing"}
    # The report keeps its own copy of the names (it does not import jax via labels): the same.
    from kareljax.probe import labels
    assert report_summaries.EXTRA_TASKS == labels.EXTRA_TASK_NAMES


def test_table1_note_names_the_tasks_its_means_average(tmp_path):
    rows = [row(step=s, semantics="original", offset=o, depth="linear", task=t, seed=0)
            for s in (0, 100) for o in (-1, 0) for t in ("facing", "position", "initial_facing")]
    assert report_summaries.averaged_tasks(["branch", "facing", "turns"]) == ["facing"]
    assert report_summaries.averaged_tasks(["initial_facing", "turns"]) == [
        "initial_facing", "turns"]
    _write_run(tmp_path / "run", rows, collect=False)
    report.write_report(str(tmp_path / "run"), str(tmp_path / "out"))
    md = (tmp_path / "out" / "report.md").read_text()
    assert "these tasks (facing, position)." in md


def test_missing_results_exit_2(tmp_path, capsys):
    from kareljax import cli
    status = cli.main(["report", "--workdir", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "results.jsonl") in err and "does not exist" in err
    with pytest.raises(report.ReportInputError, match="results.jsonl"):
        report.write_report(str(tmp_path))


def test_optional_inputs_missing_and_per_layer(tmp_path):
    rng = np.random.default_rng(2)
    directory = tmp_path / "toy"
    _write_run(directory, _rows(rng) + _rows(rng, layer=0) + _rows(rng, layer=1), collect=False)
    os.remove(directory / "config.json")
    summary = report.write_report(str(directory), str(tmp_path / "out"))
    md = (tmp_path / "out" / "report.md").read_text()
    assert "correlation" not in summary["figures"]
    assert any("collect" in n for n in summary["notes"])
    assert any("config.json" in n for n in summary["notes"])
    assert "Final generation accuracy**: not available" in md
    assert any("floors not shown" in n for n in summary["notes"])
    _valid_png(summary["figures"]["layers"])
    _valid_png(summary["figures"]["progress"])
    assert "](layers.png)" in md
    assert summary["probes"] == len(_rows(rng))      # per-layer rows kept apart
    _valid_png(summary["figures"]["layers_by_task"])
    assert "](layers_by_task.png)" in md


def test_layer_task_table_keeps_tasks_steps_and_semantics_apart():
    rows = [row(step=step, semantics=sem, offset=-1, depth="linear", task=task, seed=0,
                layer=layer, test_acc=acc, majority_acc=chance)
            for step, sem, task, layer, acc, chance in [
                (0, "original", "turns", 0, 0.5, 0.4), (0, "original", "turns", 1, 0.6, 0.4),
                (9, "original", "turns", 0, 0.5, 0.4), (9, "original", "turns", 1, 0.9, 0.4),
                (9, "alt8", "turns", 0, 0.3, 0.2), (9, "alt8", "turns", 1, 0.7, 0.2),
                (9, "alt11", "turns", 0, 0.5, 0.4), (9, "alt11", "turns", 1, 0.5, 0.4),
                (9, "original", "facing", 0, 0.25, 0.25), (9, "original", "facing", 1, 0.3, 0.25)]]
    rows.append({**rows[3], "offset": 0, "test_acc": 0.0})          # another offset: left out
    table = report.layer_task_table(rows, [0, 9])
    assert set(table) == {"turns", "facing"}
    assert table["turns"][(9, "original")] == {"acc": [0.5, 0.9], "chance": 0.4}
    alt = table["turns"][(9, "alternative")]                 # the mean of alt8 and alt11
    assert alt["acc"] == pytest.approx([0.4, 0.6]) and alt["chance"] == pytest.approx(0.3)
    assert table["turns"][(0, "original")]["acc"] == [0.5, 0.6]
    assert (0, "alternative") not in table["turns"] and set(table["facing"]) == {(9, "original")}


def test_a_forced_baseline_step_has_no_generation_accuracy(tmp_path):
    """A step collected with forced decoding (the reference programs) would score 100 %: the
    report leaves it out of the generation accuracy, with a note."""
    directory = tmp_path / "toy"
    _write_run(directory, _rows(np.random.default_rng(3)))
    index = directory / "collect" / "step_00000000" / "index.json"
    meta = json.loads(index.read_text())
    index.write_text(json.dumps({**meta, "forced": True}))
    run = report_data.load_run(str(directory))
    assert 0 not in run.generation and 100 in run.generation
    assert any("forced decoding" in n for n in run.notes)
    assert run.forced_steps == {0}
    # The report says which programs each step's probes saw.
    md = pathlib.Path(report.write_report(str(directory))["report"]).read_text()
    assert re.search(r"\| 0 \|[^\n]*\| reference \(forced\) \|\n", md)
    assert re.search(r"\| 100 \|[^\n]*\| own \|\n", md)
    assert "Programs probed: the model's own greedy programs, except at step 0" in md


def test_an_execution_order_run_reports_output_accuracy_and_reference_programs(tmp_path):
    """The E2 control: its accuracy is of the output grids, its probed programs are the
    references it reads, and its floor is copying the inputs, not a constant program."""
    directory = tmp_path / "control"
    _write_run(directory, _rows(np.random.default_rng(4)))
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "data": {"order": "execution"}}))
    summary = directory / "eval" / f"step_{TOTAL_STEPS}_test.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "copy_floor": 0.11}))
    run = report_data.load_run(str(directory))
    assert run.order == "execution" and run.floors["copy_floor"] == 0.11
    md = pathlib.Path(report.write_report(str(directory))["report"]).read_text()
    assert "**Final output accuracy**" in md and "grammar-constrained" not in md
    assert "copying each input grid as its output scores 11.0 % correct" in md
    assert "pick_marker()" not in md and "distinct programs" not in md
    assert re.search(r"\| 100 \|[^\n]*\| reference \(input\) \|\n", md)
    assert "| own |" not in md
    # It writes no program: no generated-length columns, no diversity panel (accuracy 2.6 in,
    # content 2.6 in, loss 2.6 in: 7.8 in at 110 dpi), one by-length panel.
    assert "| reference length | specs | correct | correct_gen |\n" in md
    assert "generated length" not in md
    import matplotlib.image
    out = directory / "report"
    assert matplotlib.image.imread(out / "progress.png").shape[0] == round(7.8 * 110)
    assert matplotlib.image.imread(out / "by_length.png").shape[1] == round(5.5 * 110)
    # A synthesis run's config (no order) reads as synthesis.
    assert report_data.read_order(str(tmp_path / "missing.json")) == "synthesis"


def test_a_collected_step_without_probes_is_noted(tmp_path):
    """A checkpoint the scan skipped (no samples at every offset: a babbling model's one-action
    programs) keeps its generation accuracy and is named, instead of a silent dash."""
    directory = tmp_path / "toy"
    _write_run(directory, [r for r in _rows(np.random.default_rng(4)) if r["step"] != 50])
    run = report_data.load_run(str(directory))
    assert 50 in run.generation
    assert [n for n in run.notes if "no probes" in n] == [
        f"steps [50] have test collections but no probes in {report_data.RESULTS_FILE}: the scan "
        "skips a checkpoint whose programs give no samples at every offset (a babbling model's "
        "programs can be that short; `kareljax scan` printed each step's reason), and a scan "
        "run before a step was collected does not have it"]
    full = tmp_path / "full"
    _write_run(full, _rows(np.random.default_rng(4)))
    assert not any("no probes" in n for n in report_data.load_run(str(full)).notes)


def test_bad_results_line_named(tmp_path):
    (tmp_path / "results.jsonl").write_text('{"step": 0}\n')
    with pytest.raises(report.ReportInputError, match=r"results.jsonl:1: missing keys"):
        report.load_run(str(tmp_path))


def test_results_of_an_earlier_kareljax_are_named_with_the_scan_that_repairs_them(tmp_path):
    """A row every current scan writes a field of, without it (a scan before `majority_acc`):
    the report stops, naming the file, the line, the missing keys and the repair."""
    directory = tmp_path / "old"
    rows = _rows(np.random.default_rng(5))
    old = {k: v for k, v in rows[1].items() if k not in ("majority_acc", "test_available")}
    _write_run(directory, [rows[0], old] + rows[2:], collect=False)
    path = directory / "results.jsonl"
    expected = (f"{path}:2: missing keys ['majority_acc', 'test_available']; results from an "
                f"earlier kareljax (every row of a current scan has them): run `kareljax scan "
                f"--workdir {directory}` again")
    with pytest.raises(report.ReportInputError) as raised:
        report.write_report(str(directory))
    assert str(raised.value) == expected
    with pytest.raises(report.ReportInputError, match=re.escape(expected)):
        report_data.read_results(str(path))
    assert not (directory / "report").exists()


def test_an_eval_summary_of_an_earlier_kareljax_is_noted_with_its_repair(tmp_path):
    summary = {"correct": 0.5, "noop_floor": 0.1, "best_constant": {
        "code": "def run() { move() }", "correct": 0.15, "searched": "all 155 programs"}}
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "step_100_test.json").write_text(json.dumps(summary))  # no reference_distinct
    notes = []
    assert report_data.read_floors(str(tmp_path), notes) is None
    assert notes[0] == (f"{tmp_path / 'eval' / 'step_100_test.json'}: no readable floors "
                        f"(`kareljax eval --workdir {tmp_path} --step 100` writes the summary "
                        "again)")
    (tmp_path / "eval" / "step_50_test.json").write_text(
        json.dumps({**summary, "reference_distinct": 0.6}))     # an older step's, readable
    assert report_data.read_floors(str(tmp_path), [])["reference_distinct"] == 0.6


def test_branch_rows_stay_out_of_the_state_means():
    from kareljax.probe import report_summaries as summaries
    key = dict(step=10, semantics="original", alt=-1, depth="linear", seed=0)
    states = [row(**key, task="facing", offset=o, test_acc=0.5, majority_acc=0.3)
              for o in (-1, 0)]
    branch = [row(**key, task="branch", offset=0, test_acc=0.9),
              {**row(**key, task="branch", offset=0, test_acc=0.7), "semantics": "alt8", "alt": 8}]
    content = summaries.semantic_content(states + branch, offset=0)
    assert content == {"linear": {10: 0.5}}
    table = {r["task"]: r for r in summaries.per_task_table(states + branch, 10, None)}
    assert table["branch"]["original"] == pytest.approx(0.9)
    assert table["branch"]["alternative"] == pytest.approx(0.7)
    assert table["facing"]["original"] == 0.5
    assert table["facing"]["chance"] == pytest.approx(0.3)       # the current state's row only
    assert np.isnan(table["facing"]["chance_alt"])               # no alternative rows


def test_orig_minus_alt_above_chance():
    from kareljax.probe import report_summaries as summaries
    key = dict(step=10, offset=-1, depth="linear", seed=0, task="position")
    rows = [row(**key, semantics="original", alt=-1, test_acc=0.6, majority_acc=0.2),
            row(**key, semantics="alt8", alt=8, test_acc=0.9, majority_acc=0.9)]
    cell = summaries.orig_vs_alt(rows, 10)[(-1, "linear")]
    assert cell["difference"] == pytest.approx(-0.3)
    assert cell["difference_above_chance"] == pytest.approx(0.4)
    table = summaries.per_task_table(rows, 10, None)[0]
    assert (table["chance"], table["chance_alt"]) == (pytest.approx(0.2), pytest.approx(0.9))


def test_progress_figure_without_probes_has_accuracy_and_loss_panels(tmp_path):
    """A run that was trained and evaluated but not scanned still gets its progress figure."""
    from matplotlib import image

    from kareljax.probe import report_figures

    generation = {100: {"correct": 0.2, "correct_gen": 0.1}, 200: {"correct": 0.5, "correct_gen": 0.4}}
    loss = [(s, 1.0 / s) for s in range(10, 210, 10)]
    floors = {"noop_floor": 0.1, "reference_distinct": 0.6,
              "best_constant": {"code": "def run() { move() }", "correct": 0.15,
                                "searched": "all 155 programs"}}
    paths = {}
    for name, content in (("acc", {}), ("all", {"linear": {0: 0.3, 200: 0.4}})):
        paths[name] = report_figures.plot_progress(
            str(tmp_path / f"{name}.png"), generation, content, 200,
            [{"step": 200, "val_correct": 0.45}], loss, floors)
    heights = {name: image.imread(path).shape[0] for name, path in paths.items()}
    assert heights["acc"] * 3 == pytest.approx(heights["all"] * 2, abs=3)  # 2 panels vs 3


def test_an_undefined_r2_says_why():
    flat = report.correlation({5: 0.3, 6: 0.4, 7: 0.5}, {s: {"correct": 0.05} for s in (5, 6, 7)})
    assert np.isnan(flat["r2"])
    assert "5.0 % at every checkpoint (5, 6, 7)" in report_summaries.why_undefined(flat)
    few = report.correlation({5: 0.3, 6: 0.4}, {5: {"correct": 0.1}, 6: {"correct": 0.2}})
    assert "only 2 checkpoint(s)" in report_summaries.why_undefined(few)
    fitted = report.correlation({5: 0.3, 6: 0.4, 7: 0.6}, {s: {"correct": s / 10} for s in (5, 6, 7)})
    assert np.isfinite(fitted["r2"]) and report_summaries.why_undefined(fitted) is None


def test_printed_summary_is_strict_json_with_an_undefined_r2(tmp_path, capsys):
    directory = tmp_path / "babbling"
    _write_run(directory, _rows(np.random.default_rng(3)), correct_rate={s: 0.0 for s in STEPS})
    assert report_command.run(argparse.Namespace(workdir=str(directory), out=None)) == 0

    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    summary = json.loads(capsys.readouterr().out, parse_constant=reject)
    assert summary["r2"] == {depth: None for depth in DEPTHS}   # flat generation: no line
    assert summary["table1"]["0/mlp1"] is not None


def test_sample_counts_give_ranges_and_the_subsampled_totals():
    full = {"train_samples": 900, "val_samples": 300, "test_samples": 300,
            "train_available": 900, "val_available": 300, "test_available": 300}
    capped = {**full, "train_samples": 500, "train_available": 2000}
    counts = report_summaries.sample_counts([full, capped])
    assert counts == {"train": {"used": (500, 900), "found": 2000},
                      "val": {"used": (300, 300), "found": None},
                      "test": {"used": (300, 300), "found": None}}
    assert report._samples_sentence(counts) == (
        "Samples per probe (train / val / test): 500–900 / 300 / 300 per checkpoint (a seeded "
        "subsample where a split had more aligned samples: up to train 2,000 found; the scan's "
        "max_train_samples / max_eval_samples).")
    assert report_summaries.sample_counts([]) == {}
    assert report._samples_sentence({}) is None


def test_the_papers_criteria_leave_the_untrained_step_out():
    # Step 0 reads the state best (an untrained model's early-token bias), the trained
    # checkpoints rise with accuracy: judged on the trained ones, content rises.
    content = {"linear": {0: 0.9, 10: 0.4, 20: 0.5, 30: 0.6},
               "mlp1": {0: 0.5, 10: 0.6, 20: 0.5, 30: 0.4}}
    generation = {s: {"correct": c} for s, c in [(0, 0.0), (10, 0.2), (20, 0.4), (30, 0.6)]}
    ova = {(-1, "linear"): {"difference_above_chance": 0.05},
           (0, "linear"): {"difference_above_chance": -0.02},
           (-1, "mlp1"): {"difference_above_chance": 0.005},
           (1, "mlp1"): {"difference_above_chance": 0.2}}        # not a current-state offset
    criteria = report_summaries.paper_criteria(content, generation, ova)
    assert criteria["linear"]["steps"] == [10, 20, 30]
    assert criteria["linear"]["slope"] == pytest.approx(0.5)
    assert criteria["linear"]["rises"] and not criteria["mlp1"]["rises"]
    assert criteria["linear"]["beats"] and not criteria["mlp1"]["beats"]
    assert criteria["mlp1"]["orig_minus_alt"] == {-1: 0.005}
    # With step 0 the line over all four checkpoints would fall.
    assert report_summaries.correlation(content["linear"], generation)["slope"] < 0


def test_the_report_states_the_papers_criteria(run_dir):
    summary = report.write_report(str(run_dir))
    md = open(summary["report"]).read()
    assert "## 0. The paper's criteria (trained checkpoints)" in md
    assert "Step 0 is left out of both" in md
    # The synthetic run: the original beats its alternative; two trained checkpoints fit no
    # line (3 are needed), so the rise is not claimed.
    assert set(summary["criteria"]) == set(DEPTHS)
    for c in summary["criteria"].values():
        assert c["beats"] and c["steps"] == [50, 100] and not c["rises"]
