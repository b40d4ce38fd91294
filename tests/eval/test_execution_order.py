"""Output accuracy of an execution-order model (kareljax/eval/execution_order.py): the cached
greedy decoding of the output grids against a recomputing reference, teacher forcing, and the
per-spec bookkeeping (shown, held-out, summary)."""
from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from kareljax.data import batches, presets, tokens as T
from kareljax.eval import execution_order as xo
from kareljax.model import sizes
from tests.data.test_execution_order import EXEC, random_records


@pytest.fixture(scope="module")
def model():
    return sizes.build_model(sizes.SIZES["tiny"], rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def records():
    return random_records(EXEC, n=3, seed=2)


def test_output_region_fixes_markers_and_frees_cells():
    fixed = xo.output_region(EXEC)
    assert fixed.shape == (EXEC.max_length - EXEC.program_end,) == (50,)
    assert (fixed == -1).sum() == 45
    assert [fixed[EXEC.marker(i, True) - EXEC.program_end] for i in EXEC.shown] == [
        T.OUTPUT0 + i for i in EXEC.shown]
    with pytest.raises(ValueError, match="execution"):
        xo.output_region(T.Layout(3, 3))


def _greedy_by_recomputing(model, layout, records):
    """The same decoding without a cache: the whole sequence through the model at each cell."""
    ids = np.asarray(batches.example_tokens(layout, records["inputs"], records["outputs"],
                                            records["program"])).copy()
    ids[:, layout.program_end:] = T.PAD
    fixed = xo.output_region(layout)
    for t, token in enumerate(fixed):
        p = layout.program_end + t
        if token >= 0:
            ids[:, p] = token
            continue
        logits = np.asarray(model(jnp.asarray(ids)))[:, p - 1]
        ids[:, p] = np.argmax(np.where(xo.CELL_OK, logits, -np.inf), -1)
    return ids[:, layout.cell_positions()[:, 1]] - T.WALL


def test_greedy_outputs_match_recomputation(model, records):
    got = xo.predict_outputs(model, EXEC, records)
    assert got.shape == (3, 5, 3, 3) and ((0 <= got) & (got < 15)).all()
    np.testing.assert_array_equal(got, _greedy_by_recomputing(model, EXEC, records))


def test_teacher_forced_reads_the_logit_before_each_cell(model, records):
    ids = batches.example_tokens(EXEC, records["inputs"], records["outputs"], records["program"])
    logits = np.asarray(model(jnp.asarray(ids)))
    cells = EXEC.cell_positions()[:, 1]
    expected = np.argmax(np.where(xo.CELL_OK, logits, -np.inf), -1)[:, cells - 1] - T.WALL
    np.testing.assert_array_equal(xo.teacher_forced_outputs(model, EXEC, records), expected)


def test_all_right_greedy_is_all_right_teacher_forced(model, records):
    """Outputs replaced by the model's own greedy outputs: greedy decoding writes them all, and
    so does teacher forcing (`correct` is computed that way); a changed cell breaks both."""
    own = {k: np.array(v) for k, v in records.items()}
    own["outputs"][:, :5] = xo.predict_outputs(model, EXEC, records)
    r = xo.score(model, EXEC, own)
    assert r["correct"].all() and r["greedy_correct"].all()
    assert (r["cell_accuracy"] == 1).all() and (r["teacher_forced_cell_accuracy"] == 1).all()
    own["outputs"][1, 3, 1, 1] = (own["outputs"][1, 3, 1, 1] + 1) % 15
    r = xo.score(model, EXEC, own)
    assert r["correct"].tolist() == r["greedy_correct"].tolist() == [True, False, True]
    assert not r["correct_gen"].any()          # the held-out examples' outputs are random


def test_score_bookkeeping(monkeypatch, records):
    """With a predictor that writes the true outputs but one cell of spec 1's held-out grid 2."""
    def predict(model, layout, recs):
        out = np.asarray(recs["outputs"])[:, :layout.n_shown].astype(np.int32).copy()
        if np.array_equal(recs["inputs"], records["inputs"]):
            return out
        out[1, 2, 0, 0] = (out[1, 2, 0, 0] + 1) % 15        # the held-out sequence
        return out

    monkeypatch.setattr(xo, "predict_outputs", predict)
    monkeypatch.setattr(xo, "teacher_forced_outputs", predict)
    r = xo.score(None, EXEC, records)
    assert r["correct"].tolist() == r["output_correct"].tolist() == [True, True, True]
    assert r["correct_gen"].tolist() == r["exact"].tolist() == [True, False, True]
    assert (r["cell_accuracy"] == 1).all() and (r["grid_accuracy"] == 1).all()
    np.testing.assert_array_equal(r["program"], records["program"])
    held = xo.held_out_records(records, 5)
    np.testing.assert_array_equal(held["inputs"][:, :5], records["inputs"][:, 5:])
    assert "grid_accuracy" not in xo.score(None, EXEC, records, greedy=False)


def test_evaluate_summary(model, records):
    data = presets.icml_cpu()
    data.world_height = data.world_width = 5
    data.min_length, data.max_length, data.max_program_tokens = 1, 5, 7
    data.order = "execution"
    summary, results = xo.evaluate(model, ml_collections.ConfigDict(data), records, batch_size=2)
    assert len(results["correct"]) == 3 and summary["programs"] == 3
    for key in ("correct", "correct_gen", "exact", "output_correct", "greedy_correct",
                "teacher_forced_cell_accuracy", "cell_accuracy", "copy_floor", "by_length"):
        assert key in summary
    assert summary["order"] == "execution" and 0 <= summary["cell_accuracy"] <= 1
    # the batches (2 + a padded 1) give what one batch does
    alone = xo.score(model, EXEC, records)
    for key in ("correct", "cell_accuracy", "grid_accuracy"):
        np.testing.assert_array_equal(results[key], alone[key])
