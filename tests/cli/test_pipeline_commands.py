"""`kareljax train` -> `eval` -> `collect` -> `scan` on a few steps of the tiny config."""
import csv
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest

from kareljax import cli
from kareljax.probe import report_data, store
from kareljax.probe.scan import SPLITS
from tests.checkpoint_damage import truncate_arrays
from tests.conftest import REPO

SMALL = ["--config.data.num_train=400", "--config.data.num_val=100", "--config.data.num_test=100"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    workdir = root / "tiny"
    status = cli.main(["train", "--config", "tiny", "--workdir", str(workdir), *SMALL,
                       f"--config.data.data_dir={root / 'data'}", "--config.train.num_steps=20",
                       "--config.train.checkpoint_every=10", "--config.train.keep_latest_every=10",
                       "--config.train.warmup_steps=2", "--no-progress"])
    assert status == 0
    return workdir


def _copy_without_collections(run_dir, copy) -> None:
    """The trained run (config, checkpoints, metrics) without what collect, eval and scan wrote."""
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("collect", "results*",
                                                                 "scan_cache", "eval"))


def _file_digests(directory) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_eval_prints_a_json_summary(run_dir, capsys):
    assert cli.main(["eval", "--workdir", str(run_dir), "--split", "test"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["step"] == 20 and summary["programs"] == 100
    assert "decoding test (step 20): 100%|██████████| 100/100" in captured.err   # progress bar
    assert 0 <= summary["correct_gen"] <= summary["correct"] <= 1
    lines = open(summary["per_program"]).read().splitlines()
    assert len(lines) == 100 and "code" in json.loads(lines[0])


def test_forced_reference_programs_score_100_percent(run_dir, capsys):
    assert cli.main(["eval", "--workdir", str(run_dir), "--forced", "--limit", "40"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["correct"] == summary["correct_gen"] == summary["exact"] == 1.0
    # The references decoded back are as varied as the references (padded alike after `}`).
    assert 0 < summary["distinct"] == summary["reference_distinct"] <= 1


def test_eval_errors(tmp_path, capsys):
    assert cli.main(["eval", "--workdir", str(tmp_path)]) == 2
    assert "config.json" in capsys.readouterr().err


def test_collect_then_scan(run_dir, capsys):
    assert cli.main(["collect", "--workdir", str(run_dir), "--steps", "all",
                     "--limit", "60", "--alts", "0,8"]) == 0
    assert store.collected_steps(run_dir) == [0, 10, 20]
    test = store.read_split(store.step_dir(run_dir, 20), "test")
    assert test["states"].shape == (60, 15, 64) and test["trace_row"].shape[2] == 3
    assert cli.main(["scan", "--workdir", str(run_dir), "--config.fit.steps=4",
                     "--config.fit.eval_every=2", "--config.seeds=2",
                     "--config.tasks=('facing','position')"]) == 0
    rows = [json.loads(line) for line in open(run_dir / "results.jsonl")]
    # 3 checkpoints x 3 semantics x 5 offsets x 3 depths x 2 tasks x 2 seeds
    assert len(rows) == 3 * 3 * 5 * 3 * 2 * 2
    keys = {(r["step"], r["semantics"], r["offset"], r["depth"], r["task"], r["seed"]) for r in rows}
    assert len(keys) == len(rows)
    assert all(0 <= r["test_acc"] <= 1 and 0 <= r["val_acc"] <= 1 for r in rows)
    assert all(r[f"{s}_samples"] == r[f"{s}_available"] for r in rows for s in SPLITS)
    assert "subsample" not in capsys.readouterr().err      # 60 specs: under every limit
    assert (run_dir / "results.csv").exists()

    # Same options again: every checkpoint's rows come from the scan cache, unchanged; a step
    # collected again since is scanned again.
    scan_args = ["scan", "--workdir", str(run_dir), "--config.fit.steps=4",
                 "--config.fit.eval_every=2", "--config.seeds=2",
                 "--config.tasks=('facing','position')"]
    capsys.readouterr()
    assert cli.main(scan_args) == 0
    assert "reused the results of steps [0, 10, 20]" in capsys.readouterr().err
    assert [json.loads(line) for line in open(run_dir / "results.jsonl")] == rows
    index = os.path.join(store.step_dir(run_dir, 20), store.INDEX)
    os.utime(index, (time.time() + 5, time.time() + 5))
    assert cli.main(scan_args) == 0
    assert "reused the results of steps [0, 10]" in capsys.readouterr().err

    # A train limit below the aligned samples: a seeded subsample, recorded and reported.
    assert cli.main(["scan", "--workdir", str(run_dir), "--config.fit.steps=2",
                     "--config.fit.eval_every=2", "--config.seeds=1", "--config.offsets=(-1,)",
                     "--config.depths=('linear',)", "--config.tasks=('facing',)",
                     "--config.max_train_samples=50"]) == 0
    capped = [json.loads(line) for line in open(run_dir / "results.jsonl")]
    assert {r["train_samples"] for r in capped} == {50}
    available = max(r["train_available"] for r in capped)
    assert available > 50 and all(r["val_samples"] == r["val_available"] for r in capped)
    err = capsys.readouterr().err
    assert f"train 50 of up to {available:,} (--config.probe.scan.max_train_samples)" in err
    assert "(--config.probe.scan.max_eval_samples)" not in err


def test_scan_rejects_bad_options(run_dir, capsys):
    assert cli.main(["scan", "--workdir", str(run_dir), "--config.fit.stepz=4"]) == 2
    assert "stepz" in capsys.readouterr().err
    assert cli.main(["scan", "--workdir", str(run_dir), "--config.fit.steps=0"]) == 2
    assert "fit.steps: must be >= 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, message", [
    ("--steps", "ten", "--steps: 'all', 'latest' or step numbers like 0,500, got 'ten'"),
    ("--alts", "12", "probe.collect.alts: alternative semantics indices in 0..11 separated by"),
    ("--alts", "0,x", "got '0,x'"),
    ("--splits", "test,dev", "--splits: some of train, val, test separated by commas, got"),
])
def test_collect_rejects_bad_options_before_any_work(run_dir, capsys, option, value, message):
    before = _file_digests(run_dir / "collect")
    assert cli.main(["collect", "--workdir", str(run_dir), option, value]) == 2
    assert message in capsys.readouterr().err
    assert _file_digests(run_dir / "collect") == before


def test_collect_names_kept_steps_collected_with_other_options(run_dir, tmp_path, capsys):
    copy = tmp_path / "tiny"       # the run without its collections
    _copy_without_collections(run_dir, copy)
    collect = ["collect", "--workdir", str(copy), "--steps", "20", "--splits", "test",
               "--limit", "10"]
    assert cli.main([*collect, "--alts", "3,8"]) == 0
    capsys.readouterr()
    # Alternatives the collection holds (a subset) need nothing new: no note.
    assert cli.main([*collect, "--alts", "8"]) == 0
    captured = capsys.readouterr()
    assert "(0 new)" in captured.out and "note" not in captured.err
    assert cli.main([*collect, "--alts", "1,8", "--per-layer"]) == 0
    captured = capsys.readouterr()
    assert "(0 new)" in captured.out
    assert ("kareljax collect: note: kept steps collected with other options (20: alts [3, 8], "
            "without [1], per_layer False, not True); --overwrite collects them again with these"
            ) in captured.err


def test_per_layer_collection_keeps_the_models_blocks_plus_one_states(run_dir, tmp_path):
    """As HF CodeGen's hidden_states: the embedding, blocks 1 .. n-1, block n after the final
    norm (the tiny model has 2 blocks)."""
    copy = tmp_path / "tiny"
    _copy_without_collections(run_dir, copy)
    assert cli.main(["collect", "--workdir", str(copy), "--steps", "20", "--splits", "test",
                     "--limit", "10", "--per-layer"]) == 0
    index = store.read_index(store.step_dir(str(copy), 20))
    assert index["layers"] == 2 + 1
    states = store.read_split(store.step_dir(str(copy), 20), "test")["states"]
    assert states.shape[1] == 2 + 1


def test_capped_samples_note_names_each_limited_split():
    from kareljax.probe.scan_run import capped_samples_note
    full = {"train_samples": 90, "train_available": 90, "val_samples": 30, "val_available": 30,
            "test_samples": 30, "test_available": 30}
    assert capped_samples_note([full]) is None
    smaller = {k: v // 2 for k, v in full.items()}        # a checkpoint with fewer samples, all used
    note = capped_samples_note([smaller, {**full, "train_samples": 64, "test_samples": 16}])
    assert ("train 64 of up to 90 (--config.probe.scan.max_train_samples); test 16 of up to 30"
            in note)
    assert "val " not in note


def test_eval_of_one_checkpoint(run_dir, capsys):
    assert cli.main(["eval", "--workdir", str(run_dir), "--split", "val", "--step", "10",
                     "--limit", "30"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["step"], summary["split"], summary["programs"]) == (10, "val", 30)
    assert (run_dir / "eval" / "step_10_val.json").exists()
    assert cli.main(["eval", "--workdir", str(run_dir), "--step", "15"]) == 2
    assert "15" in capsys.readouterr().err


def test_collect_one_checkpoint_with_all_twelve_alternatives(run_dir, tmp_path):
    copy = tmp_path / "tiny"       # the run without its collections
    _copy_without_collections(run_dir, copy)
    alts = ",".join(str(a) for a in range(12))
    args = ["collect", "--workdir", str(copy), "--splits", "test", "--limit", "10",
            "--alts", alts]
    assert cli.main(args + ["--steps", "latest"]) == 0
    assert store.collected_steps(copy) == [20]
    test = store.read_split(store.step_dir(copy, 20), "test")
    assert test["trace_row"].shape[:3] == (10, 5, 13)      # specs, shown examples, semantics
    assert cli.main(args + ["--steps", "10"]) == 0
    assert store.collected_steps(copy) == [10, 20]


def test_results_csv_holds_the_jsonl_rows(run_dir):
    rows = [json.loads(line) for line in open(run_dir / "results.jsonl")]
    with open(run_dir / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows)
    for row, line in zip(rows, table):
        assert (int(line["step"]), line["task"], int(line["offset"])) == (
            row["step"], row["task"], row["offset"])
        assert float(line["test_acc"]) == pytest.approx(row["test_acc"])


def test_checkpoints_that_do_not_read_back_are_named_and_nothing_is_lost(run_dir, tmp_path,
                                                                         capsys):
    copy = tmp_path / "tiny"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("results*", "scan_cache"))
    assert cli.main(["collect", "--workdir", str(copy), "--steps", "10", "--splits", "test",
                     "--limit", "10", "--overwrite"]) == 0
    for step in (10, 20):
        truncate_arrays(copy / "checkpoints" / str(step))
    before = _file_digests(copy)

    # In a process of its own, as users meet it: the error, not orbax's thousands of lines
    # about the reads it abandoned (before, a traceback and "Exception ignored" per array).
    done = subprocess.run([sys.executable, "-m", "kareljax", "eval", "--workdir", str(copy)],
                          cwd=REPO, env=dict(os.environ, JAX_PLATFORMS="cpu"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert lines[0] == f"kareljax eval: no checkpoint in {copy / 'checkpoints'} reads back " \
                       "(nothing was moved; damaged files, or a checkpoint of another model):"
    assert [line.split(":")[0] for line in lines[1:]] == ["  step 20", "  step 10"]
    assert all("Error reading" in line for line in lines[1:]), lines

    capsys.readouterr()
    assert cli.main(["eval", "--workdir", str(copy), "--step", "10"]) == 2
    assert "checkpoint 10 of" in capsys.readouterr().err
    # --overwrite: the step's collection is only replaced once its checkpoint has read back.
    assert cli.main(["collect", "--workdir", str(copy), "--steps", "10", "--overwrite"]) == 2
    assert "kareljax collect: checkpoint 10 of" in capsys.readouterr().err
    assert cli.main(["train", "--config", "tiny", "--workdir", str(copy), *SMALL,
                     f"--config.data.data_dir={run_dir.parent / 'data'}",
                     "--config.train.num_steps=30", "--config.train.checkpoint_every=10",
                     "--config.train.keep_latest_every=10", "--config.train.warmup_steps=2",
                     "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "kareljax train: no checkpoint in" in err
    assert f"move {copy / 'checkpoints'} elsewhere" in err
    assert _file_digests(copy) == before
    assert not (copy / "corrupt_checkpoints").exists()


def test_a_collection_stopped_between_splits_is_completed_not_skipped(run_dir, tmp_path, capsys):
    copy = tmp_path / "tiny"       # the run without its collections
    _copy_without_collections(run_dir, copy)
    collect = ["collect", "--workdir", str(copy), "--steps", "20", "--limit", "10",
               "--alts", "0"]
    assert cli.main(collect) == 0
    directory = pathlib.Path(store.step_dir(copy, 20))
    # What a collection killed while writing its last split (train) leaves behind.
    index = store.read_index(str(directory))
    del index["splits"]["train"]
    (directory / store.INDEX).write_text(json.dumps(index))
    (directory / "train-00000.npz").unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in directory.glob("*.npz")}

    scan_args = ["scan", "--workdir", str(copy), "--config.fit.steps=2",
                 "--config.fit.eval_every=2", "--config.seeds=1", "--config.tasks=('facing',)"]
    capsys.readouterr()
    assert cli.main(scan_args) == 2
    err = capsys.readouterr().err
    assert "steps [20] skipped: their collections lack a split" in err
    assert "no complete, readable collection under" in err

    assert cli.main(collect) == 0
    captured = capsys.readouterr()
    assert "(1 new)" in captured.out
    assert "step 20:   0%|          | 0/10 " in captured.err     # specs: the train split's only
    assert set(store.read_index(str(directory))["splits"]) == {"test", "val", "train"}
    assert {p.name: p.stat().st_mtime_ns for p in directory.glob("*.npz")
            if p.name in kept} == kept          # only the missing split was collected
    assert cli.main(scan_args) == 0

    # Stopped between splits, then asked again with other options: the step starts clean.
    del index["splits"]["val"]
    (directory / store.INDEX).write_text(json.dumps(index))
    assert cli.main([*collect[:-1], "0,8"]) == 0
    index = store.read_index(str(directory))
    assert index["alts"] == [0, 8] and set(index["splits"]) == {"test", "val", "train"}
    assert store.read_split(str(directory), "test")["trace_row"].shape[2] == 3


def test_overwriting_a_linked_collection_leaves_the_linked_run_alone(run_dir, tmp_path, capsys):
    """Runs can share collections through links (docs/results does); `collect --overwrite` in
    one of them replaces its link with a collection of its own and deletes nothing of the
    other's (before: `rmtree` refused the link with a traceback)."""
    first, second = tmp_path / "first", tmp_path / "second"
    for copy in (first, second):
        _copy_without_collections(run_dir, copy)
    collect = ["collect", "--steps", "20", "--limit", "10", "--alts", "0"]
    assert cli.main([collect[0], "--workdir", str(first), *collect[1:]]) == 0
    (second / "collect").mkdir()
    linked = pathlib.Path(store.step_dir(second, 20))
    linked.symlink_to(store.step_dir(first, 20), target_is_directory=True)
    before = _file_digests(first)

    assert cli.main([collect[0], "--workdir", str(second), *collect[1:], "--overwrite"]) == 0
    assert "(1 new)" in capsys.readouterr().out
    assert _file_digests(first) == before
    assert linked.is_dir() and not linked.is_symlink()
    assert set(store.read_index(str(linked))["splits"]) == {"test", "val", "train"}


def test_a_link_to_a_run_that_is_gone_is_named(run_dir, tmp_path, capsys):
    """A step linked to another run's collection that was since moved or deleted: collect and
    scan name the link and its target (before: collect failed in os.makedirs with a traceback,
    scan said nothing); collect --overwrite collects the step in place of the link."""
    copy = tmp_path / "tiny"
    _copy_without_collections(run_dir, copy)
    (copy / "collect").mkdir()
    linked = pathlib.Path(store.step_dir(copy, 20))
    gone = tmp_path / "gone" / "step_00000020"
    linked.symlink_to(gone, target_is_directory=True)
    collect = ["collect", "--workdir", str(copy), "--steps", "20", "--limit", "10",
               "--alts", "0"]
    message = (f"{linked} is a link to {gone}, which does not exist (a moved, deleted or "
               f"unmounted run?): restore it, or `kareljax collect --workdir {copy} --steps 20 "
               "--overwrite` collects the step here in place of the link")

    assert cli.main(collect) == 2
    assert f"kareljax collect: {message}" in capsys.readouterr().err
    assert linked.is_symlink() and os.readlink(linked) == str(gone)     # left as it was
    assert cli.main(["scan", "--workdir", str(copy)]) == 2
    err = capsys.readouterr().err
    assert f"kareljax scan: step 20 skipped: {message}" in err
    assert "no complete, readable collection" in err

    assert cli.main([*collect, "--overwrite"]) == 0
    assert linked.is_dir() and not linked.is_symlink()
    assert set(store.read_index(str(linked))["splits"]) == {"test", "val", "train"}
    assert not os.path.lexists(os.path.join(os.path.dirname(linked), "replaced_step_00000020"))


def test_a_damaged_collection_is_named_skipped_and_collected_again(run_dir, tmp_path, capsys):
    """A shard or index that does not read back (a damaged disk, a copy from a bucket cut short):
    scan probes the other steps and says how to collect the damaged one again; collect touches it
    only under --overwrite; the report notes the step instead of failing."""
    copy = tmp_path / "tiny"
    _copy_without_collections(run_dir, copy)
    collect = ["collect", "--workdir", str(copy), "--steps", "10,20", "--limit", "10",
               "--alts", "0"]
    scan_args = ["scan", "--workdir", str(copy), "--config.fit.steps=2",
                 "--config.fit.eval_every=2", "--config.seeds=1", "--config.tasks=('facing',)",
                 "--config.depths=('linear',)"]
    assert cli.main(collect) == 0
    shard = pathlib.Path(store.step_dir(copy, 10)) / "test-00000.npz"
    shard.write_bytes(shard.read_bytes()[:300])
    capsys.readouterr()
    assert cli.main(scan_args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["skipped_steps"] == [10]
    assert (f"kareljax scan: step 10 skipped: {shard} does not read back (BadZipFile: "
            in captured.err)
    assert (f"`kareljax collect --workdir {copy} --steps 10 --overwrite` collects it again"
            in captured.err)
    assert re.findall(r"probes: +(\d+)%", captured.err)[-1] == "100"   # the skipped step's
    # probes leave the bar's total, so it ends full
    assert {json.loads(line)["step"] for line in open(copy / "results.jsonl")} == {20}
    report = report_data.load_run(str(copy))
    assert 10 not in report.generation and 20 in report.generation
    assert any("cannot read a test shard" in n and "BadZipFile" in n for n in report.notes)

    index = pathlib.Path(store.step_dir(copy, 20)) / store.INDEX
    index.write_text(index.read_text()[:40])
    before = _file_digests(copy / "collect")
    assert cli.main(scan_args) == 1
    err = capsys.readouterr().err
    assert f"step 20 skipped: {index} does not read back (JSONDecodeError" in err
    assert "no checkpoint could be probed (steps [20, 10] skipped, each with its reason" in err
    assert cli.main(collect) == 2                    # not without --overwrite: nothing removed
    assert f"kareljax collect: step 20: {index} does not read back" in capsys.readouterr().err
    assert _file_digests(copy / "collect") == before
    assert cli.main([*collect, "--overwrite"]) == 0
    assert cli.main(scan_args) == 0
    assert {json.loads(line)["step"] for line in open(copy / "results.jsonl")} == {10, 20}


def test_a_damaged_dataset_is_named_and_an_overwritten_collection_comes_back(run_dir, tmp_path,
                                                                              capsys):
    copy, data = tmp_path / "tiny", tmp_path / "data"
    _copy_without_collections(run_dir, copy)
    shutil.copytree(run_dir.parent / "data", data)
    config = json.loads((copy / "config.json").read_text())
    config["data"]["data_dir"] = str(data)
    (copy / "config.json").write_text(json.dumps(config))
    collect = ["collect", "--workdir", str(copy), "--steps", "20", "--splits", "test",
               "--limit", "10", "--alts", "0"]
    assert cli.main(collect) == 0
    before = _file_digests(copy / "collect")
    (shard,) = data.rglob("*-test.array_record*")
    shard.write_bytes(shard.read_bytes()[:len(shard.read_bytes()) // 3])
    capsys.readouterr()

    assert cli.main([*collect, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "kareljax collect: dataset karel/" in err and f"{shard}) does not read back" in err
    assert "`kareljax data build --config ...` with this run's config to build it again" in err
    assert _file_digests(copy / "collect") == before      # the replaced collection is back
    assert [p.name for p in (copy / "collect").iterdir()] == ["step_00000020"]
    assert cli.main(["eval", "--workdir", str(copy), "--limit", "10"]) == 2
    assert f"{shard}) does not read back" in capsys.readouterr().err


def test_a_damaged_config_json_is_named_with_the_copy_each_checkpoint_keeps(run_dir, tmp_path,
                                                                            capsys):
    copy = tmp_path / "tiny"
    _copy_without_collections(run_dir, copy)
    recorded = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(recorded)[:120])
    message = (f"{copy / 'config.json'} does not read back (JSONDecodeError: ")
    capsys.readouterr()
    assert cli.main(["eval", "--workdir", str(copy)]) == 2
    assert message in capsys.readouterr().err
    assert cli.main(["train", "--config", "tiny", "--workdir", str(copy), *SMALL,
                     "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert f"every checkpoint keeps a copy of it: {copy / 'checkpoints'}/<step>/config/metadata" \
        in err
    # The copy the message points to is the config, whole.
    assert json.loads((copy / "checkpoints" / "20" / "config" / "metadata").read_text()) == \
        recorded
