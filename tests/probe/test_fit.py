"""Probes: they learn a linearly encoded label, not shuffled ones, and vmapped training equals
training them one at a time."""
import jax
import numpy as np
import pytest

from kareljax.probe import fit, models

OPTIONS = fit.FitOptions(steps=120, batch_size=128, eval_every=40)


def _data(seed, n, signal):
    rng = np.random.default_rng(seed)
    facing = rng.integers(0, 4, n)
    x = rng.normal(size=(n, 32)).astype(np.float32)
    x[:, :4] += signal * np.eye(4, dtype=np.float32)[facing]
    return x, np.pad(facing[:, None], ((0, 0), (0, 1)), constant_values=-1).astype(np.int32)


def _stack(a, p):
    return np.broadcast_to(a, (p,) + a.shape).copy()


def _fit(keys, labels, xs, hidden, options=OPTIONS):
    layout = models.HeadLayout.of((4,), 2, 8)
    p = len(keys)
    return fit.fit(keys, jax.random.key(7), *labels, _stack(layout.mask, p), _stack(layout.offset, p),
                   _stack(layout.valid, p), *xs, hidden=hidden, num_outputs=8, options=options)


@pytest.fixture(scope="module")
def splits():
    (xt, yt), (xv, yv), (xs, ys) = (_data(s, n, 6.0) for s, n in ((0, 2000), (1, 500), (2, 500)))
    return fit.zscore(xt, xv, xs), (yt, yv, ys)


@pytest.mark.parametrize("hidden", [(), (256,)], ids=["linear", "mlp1"])
def test_learns_encoded_facing_and_not_shuffled_labels(splits, hidden):
    xs, (yt, yv, ys) = splits
    shuffled = np.random.default_rng(9).permutation(yt)
    labels = (np.stack([yt, shuffled]), _stack(yv, 2), _stack(ys, 2))
    result = _fit(jax.random.split(jax.random.key(0), 2), labels, xs, hidden)
    assert result["test_acc"][0] > 0.97
    assert abs(float(result["test_acc"][1]) - 0.25) < 0.08


def test_train_accuracy_and_its_late_rise_say_whether_a_probe_converged(splits):
    """A probe given too small a learning rate is still learning in its second half (its train
    accuracy, far from the 100 % this task allows, still rises); one trained well has stopped."""
    xs, (yt, yv, ys) = splits
    labels = (yt[None], yv[None], ys[None])
    keys = jax.random.split(jax.random.key(0), 1)
    early = _fit(keys, labels, xs, (), fit.FitOptions(steps=300, batch_size=64, eval_every=10,
                                                      lr=0.005, weight_decay=0.0))
    assert float(early["train_acc"][0]) < 0.9
    assert float(early["train_acc_rise"][0]) > 0.005
    late = _fit(keys, labels, xs, (), fit.FitOptions(steps=600, batch_size=128, eval_every=20))
    assert float(late["train_acc"][0]) > 0.97
    assert abs(float(late["train_acc_rise"][0])) <= 0.002


def test_the_report_notes_probes_still_learning():
    from kareljax.probe.report import still_learning_note
    rows = [{"depth": "linear", "train_acc_rise": 0.0}, {"depth": "mlp2", "train_acc_rise": 0.05},
            {"depth": "mlp2", "train_acc_rise": 0.02}, {"depth": "linear", "train_acc_rise": -0.01}]
    note = still_learning_note(rows)
    assert note.startswith("2 of 4 probes were still learning") and "mlp2 2" in note
    assert still_learning_note(rows[:1]) is None and still_learning_note(rows[3:]) is None


def test_vmapped_equals_one_at_a_time(splits):
    xs, (yt, yv, ys) = splits
    rng = np.random.default_rng(3)
    labels = [np.stack([yt, rng.permutation(yt), yt]), _stack(yv, 3), _stack(ys, 3)]
    keys = jax.random.split(jax.random.key(1), 3)
    together = _fit(keys, labels, xs, (256,))
    for i in range(3):
        alone = _fit(keys[i:i + 1], [y[i:i + 1] for y in labels], xs, (256,))
        for name in ("val_acc", "test_acc"):
            np.testing.assert_allclose(alone[name][0], together[name][i], atol=2e-3)


def test_head_layout_scores_multi_head_tasks():
    layout = models.HeadLayout.of((3, 2), 3, 6)
    logits = np.array([[5., 0, 0, 0, 5, -9], [0, 5, 0, 5, 0, -9]], np.float32)
    labels = np.array([[0, 1, -1], [1, 1, -1]], np.int32)
    loss, correct = models.loss_and_correct(logits, labels, layout)
    assert correct.tolist() == [True, False] and np.isfinite(loss)


def test_several_outputs_score_the_share_of_outputs_with_every_head_right():
    """Labels from two shown examples: heads (3, 2) per output, twice; a sample scores the
    share of outputs whose heads are all right."""
    layout = models.HeadLayout.of((3, 2), 5, 11, groups=2)
    assert layout.group.tolist() == [0, 0, 1, 1, 0] and layout.valid.tolist() == [True] * 4 + [False]
    logits = np.full((2, 11), -9.0, np.float32)
    logits[:, [0, 4]] = 5          # output 0: head 0 says 0, head 1 says 1
    logits[0, [5, 9]] = 5          # output 1, sample 0: head 2 says 0, head 3 says 1
    logits[1, [6, 9]] = 5          # sample 1: head 2 says 1
    labels = np.array([[0, 1, 0, 1, -1], [0, 1, 0, 1, -1]], np.int32)
    loss, score = models.loss_and_correct(logits, labels, layout)
    assert np.asarray(score).tolist() == [1.0, 0.5] and np.isfinite(loss)


def test_options_validate():
    with pytest.raises(ValueError, match="multiple"):
        fit.FitOptions(steps=100, eval_every=30)
