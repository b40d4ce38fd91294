"""The scripts of docs/results' E3 and E1-on-long-programs sections: long_specs.py (accuracy by
program length beside the probes' content, and their fit) and implied_by_first_action.py (what
the action before a plan label implies, by lookup)."""
import importlib.util
import json
import pathlib

import numpy as np
import pytest

from tests.probe.test_report import _rows, _write_run

RESULTS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "results"


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_long_specs_splits_accuracy_by_length_and_fits_content(tmp_path, capsys, monkeypatch):
    directory = tmp_path / "run"
    _write_run(directory, _rows(np.random.default_rng(0)))
    long_specs = _load(RESULTS / "long_programs" / "long_specs.py")
    monkeypatch.setattr("sys.argv", ["long_specs.py", "--workdir", str(directory)])
    long_specs.main()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    rows = [r for r in lines if "step" in r]
    fits = [r for r in lines if "fit" in r]
    assert {r["step"] for r in rows} == {0, 50, 100}
    for r in rows:
        if r["correct"] is None:
            continue
        # the whole split's accuracy is the specs-weighted mean of the two length groups
        assert min(r["correct_short"], r["correct_long"]) <= r["correct"] + 1e-9
        assert r["correct"] <= max(r["correct_short"], r["correct_long"]) + 1e-9
    assert {f["fit"] for f in fits} == {"content vs correct_long",
                                        "content_above_chance vs correct_long"}


def test_a_lookup_predicts_the_most_frequent_follower():
    implied = _load(RESULTS / "e1_long_programs" / "implied_by_first_action.py")
    x_train = np.array([[0], [0], [0], [1], [1]])
    y_train = np.array([[2], [2], [3], [4], [4]])
    x_test = np.array([[0], [1], [5]])            # 5 unseen: the overall most frequent (2)
    assert implied.lookup_accuracy(x_train, y_train, x_test, np.array([[2], [4], [2]])) == 1.0
    assert implied.lookup_accuracy(x_train, y_train, x_test, np.array([[3], [4], [4]])) == (
        pytest.approx(1 / 3))
    assert implied.majority_accuracy(y_train, np.array([[2], [4], [2], [3]])) == 0.5
