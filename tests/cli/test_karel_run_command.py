"""`kareljax karel run` and `kareljax.karel.records`: golden outputs, record errors, timeouts."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from kareljax.karel import printer, records, sampling
from kareljax.karel import world as world_lib
from tests.conftest import GOLDEN_DIR

ENGINES = ("jax", "reference")


def golden_records(name: str, count: int) -> list[dict]:
    """The first `count` records of a golden file (tests/golden; a missing file is an error)."""
    with gzip.open(GOLDEN_DIR / name, "rt") as f:
        return [json.loads(line) for _, line in zip(range(count), f)]


def main(argv) -> int:
    from kareljax.cli import main as cli_main  # imported late: jax is already imported here

    return cli_main([str(a) for a in argv])


def run_cli(tmp_path, inputs, *options) -> list[dict]:
    source, target = tmp_path / "in.jsonl.gz", tmp_path / "out.jsonl.gz"
    records.write_records(source, inputs)
    assert main(["karel", "run", "--input", source, "--output", target, *options]) == 0
    return records.read_records(target)


def assert_matches_golden(expected: dict, actual: dict) -> None:
    assert "error" not in actual, actual["error"]
    assert actual["code"] == expected["code"]
    assert len(actual["examples"]) == len(expected["examples"])
    for want, got in zip(expected["examples"], actual["examples"]):
        assert got["input"] == want["input"]
        assert got["status"] == "ok"
        exact = want.get("output_exact")
        if exact is not None:
            assert got["output_exact"] == exact
        if exact is None or all(count < 10 for *_, count in exact["markers"]):
            assert got["output"] == want["output"]  # the original truncates counts >= 10


@pytest.mark.parametrize("engine", ENGINES)
def test_golden_outputs(tmp_path, engine):
    inputs = golden_records("loops.jsonl.gz", 200) + golden_records("conditionals.jsonl.gz", 200)
    outputs = run_cli(tmp_path, inputs, "--engine", engine)
    assert len(outputs) == len(inputs)
    for expected, actual in zip(inputs, outputs):
        assert_matches_golden(expected, actual)


def test_console_script_subprocess(tmp_path):
    inputs = golden_records("while.jsonl.gz", 20)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl.gz"
    records.write_records(source, inputs)
    done = subprocess.run(
        [sys.executable, "-m", "kareljax.cli", "karel", "run", "--input", str(source),
         "--output", str(target)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "20 records, 100 examples, 0 errors, 0 timeouts" in done.stderr
    for expected, actual in zip(inputs, records.read_records(target), strict=True):
        assert_matches_golden(expected, actual)


def test_help_does_not_import_jax():
    code = ("import sys; from kareljax import cli; cli.build_parser(); "
            "assert 'jax' not in sys.modules, 'building the parser imported jax'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    done = subprocess.run([sys.executable, "-m", "kareljax", "karel", "run", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--max-steps" in done.stdout


@pytest.mark.parametrize("engine", ENGINES)
def test_malformed_records_get_errors(tmp_path, engine):
    good = golden_records("loops.jsonl.gz", 2) + golden_records("conditionals.jsonl.gz", 1)
    world = good[0]["examples"][0]["input"]
    no_border = world.replace("#", ".", 1)
    inputs = [
        good[0],
        {"code": "def run() { move( }", "examples": [{"input": world, "output": "stale"}]},
        {"code": "def run() { move() }",
         "examples": [{"input": world}, {"input": "###\n#x^\n###"}]},
        good[1],
        {"code": "def run() { move() }", "examples": [{"input": no_border}]},
        {"examples": [{"input": world}]},
        {"code": "def run() { move() }", "examples": []},
        good[2],
        {"code": "def run() {" + "repeat(2) {" * 9_999 + "move()" + "}" * 10_000,
         "examples": [{"input": world}]},
    ]
    outputs = run_cli(tmp_path, inputs, "--engine", engine)
    errors = [r.get("error") for r in outputs]
    assert errors[1].startswith("line 1, column 19: expected")
    assert "unknown world character 'x'" in errors[2]
    assert "border" in errors[4]
    assert "'code'" in errors[5]
    assert "blocks nested at most 100 deep" in errors[8]   # 10,000 deep: no RecursionError
    for i in (1, 2, 4, 5, 8):
        assert all(not set(records.OUTPUT_KEYS) & set(e) for e in outputs[i]["examples"])
    assert outputs[6] == inputs[6]
    for i, expected in zip((0, 3, 7), good):
        assert_matches_golden(expected, outputs[i])


@pytest.mark.parametrize("engine", ENGINES)
def test_max_steps_timeout(tmp_path, engine):
    world = "#####\n#.^.#\n#...#\n#####"
    inputs = [{"code": "def run() { while(no_markers_present()) { turn_right() } }",
               "examples": [{"input": world}]},
              {"code": "def run() { turn_left(); turn_left() }", "examples": [{"input": world}]}]
    spin, turn = run_cli(tmp_path, inputs, "--engine", engine, "--max-steps", 5)
    # test, turn, test, turn, test: the sixth step (a third turn) is over budget.
    assert spin["examples"][0]["status"] == "timeout"
    assert spin["examples"][0]["output"] == "#####\n#.v.#\n#...#\n#####"
    assert turn["examples"][0]["status"] == "ok"
    assert turn["examples"][0]["output_exact"] == {"hero": [2, 1, "v"], "markers": []}


def random_world_text(rng, height: int, width: int) -> str:
    walls = rng.random((height, width)) < 0.2
    walls[[0, -1]] = walls[:, [0, -1]] = True
    row, col = rng.integers(1, height - 1), rng.integers(1, width - 1)
    walls[row, col] = False
    counts = rng.integers(0, 3, (height, width)) * (rng.random((height, width)) < 0.3)
    markers = np.where(walls, 0, counts)
    return world_lib.to_text(world_lib.World(walls, markers, row, col, rng.integers(4)))


def test_engines_agree_on_random_programs():
    rng = np.random.default_rng(0)
    inputs = []
    for i in range(96):  # two groups for the JAX engine: 3 worlds of 8x8, 2 worlds of 6x10
        (height, width), count = (((8, 8), 3), ((6, 10), 2))[i % 2]
        examples = [{"input": random_world_text(rng, height, width), "id": k}
                    for k in range(count)]
        inputs.append({"code": printer.to_text(sampling.random_program(rng)), "examples": examples})
    by_jax = records.run_records(inputs, "jax", max_steps=60)
    by_reference = records.run_records(inputs, "reference", max_steps=60)
    assert by_jax == by_reference
    statuses = [e["status"] for r in by_jax for e in r["examples"]]
    assert "timeout" in statuses and "ok" in statuses
    assert all(e["id"] == k for r in by_jax for k, e in enumerate(r["examples"]))


def test_records_files_round_trip(tmp_path):
    data = [{"code": "def run() { move() }", "examples": [], "note": "é"}]
    for name in ("a.jsonl", "a.jsonl.gz"):
        records.write_records(tmp_path / name, data)
        assert records.read_records(tmp_path / name) == data
    with gzip.open(tmp_path / "a.jsonl.gz", "rt") as f:
        assert json.loads(f.readline()) == data[0]
    (tmp_path / "bad.jsonl").write_text('{"code": "x"}\n[1, 2]\n')
    with pytest.raises(records.RecordFileError, match="bad.jsonl:2"):
        records.read_records(tmp_path / "bad.jsonl")
    for name in ("bad.jsonl", "missing"):
        assert main(["karel", "run", "--input", tmp_path / name, "--output", tmp_path / "o"]) == 2


def test_padded_sizes_are_few():
    assert [records.padded_size(n) for n in (1, 3, 5, 8, 9, 200, 1024, 1025, 3000)] == [
        8, 8, 8, 8, 16, 256, 1024, 2048, 3072]
