"""`scan.scan_step` on small forced collections: the branch task (programs with conditionals get
branch probes, offset 0, one per semantics, depth and seed; straight-line collections get none),
task checks, chance levels, per-layer collections and the sample limits."""
import dataclasses

import numpy as np
import pytest

from kareljax import config_files
from kareljax.data import dataset_config, generate
from kareljax.eval.evaluate import program_grammar
from kareljax.probe import collect, fit, jobs, labels, models, scan, store

ALTS = (8,)
OPTIONS = scan.ScanOptions(depths=("linear",), tasks=("facing", "branch"), offsets=(0,), seeds=2,
                           fit=fit.FitOptions(steps=4, batch_size=16, eval_every=2))


def _collect_store(tmp_path, preset: str, model, per_layer: bool = False, specs: int = 64,
                   step: int = 7) -> str:
    data = config_files.load(preset).data
    records = next(generate.generate_split(data, "test", chunk_size=64))
    records = {k: v[:specs] for k, v in records.items()}
    grammar = program_grammar(data)
    part = collect.collect_batch(model, dataset_config.layout(data), records, grammar,
                                 max_steps=data.max_steps, alts=ALTS, forced=True,
                                 per_layer=per_layer)
    layout = dataset_config.layout(data)
    meta = {"step": step, "alts": list(ALTS), "forced": True, "per_layer": per_layer,
            "conditions": collect.has_conditions(grammar),
            "layout": {"height": layout.height, "width": layout.width, "n_shown": layout.n_shown}}
    directory = str(tmp_path / f"{preset}_per_layer_{per_layer}_{specs}_specs_step_{step}")
    for split in ("train", "val", "test"):
        store.write_split(directory, split, part, meta)
    return directory


@pytest.mark.parametrize("preset, conditions", [("cond_cpu", True), ("icml_cpu", False)])
def test_branch_probes_only_with_conditionals(tmp_path, model, preset, conditions):
    directory = _collect_store(tmp_path, preset, model)
    assert store.read_index(directory)["conditions"] == conditions
    rows = scan.scan_step(directory, OPTIONS)
    assert len(rows) == scan.probes_per_step(OPTIONS, 1 + len(ALTS), conditions)
    branch = [r for r in rows if r["task"] == "branch"]
    if not conditions:
        assert not branch
        return
    keys = sorted((r["semantics"], r["seed"], r["offset"], r["depth"]) for r in branch)
    assert keys == [("alt8", 0, 0, "linear"), ("alt8", 1, 0, "linear"),
                    ("original", 0, 0, "linear"), ("original", 1, 0, "linear")]
    assert all(0 <= r["test_acc"] <= 1 and r["train_samples"] > 0 for r in branch)
    assert all(0 <= r["majority_acc"] <= 1 for r in rows)
    assert len({r["train_samples"] for r in branch}) == 1
    assert branch[0]["train_samples"] != next(r for r in rows if r["task"] == "facing")[
        "train_samples"]  # its own sample set


def test_per_layer_branch_probes_share_one_sample_set(tmp_path, model, monkeypatch):
    """A per-layer collection with conditionals: branch probes for the mean and every layer, on
    samples found once per split (not once per layer view)."""
    directory = _collect_store(tmp_path, "cond_cpu", model, per_layer=True)
    real = labels.branch_samples
    calls = []
    monkeypatch.setattr(labels, "branch_samples", lambda *a, **k: calls.append(1) or real(*a, **k))
    rows = scan.scan_step(directory, OPTIONS)
    assert len(calls) == 3
    layers = model.n_layers + 1
    branch = [r for r in rows if r["task"] == "branch"]
    assert sorted({r.get("layer", -1) for r in branch}) == [-1] + list(range(layers))
    assert len(branch) == (1 + layers) * 2 * (1 + len(ALTS))        # views x seeds x semantics
    assert len({r["train_samples"] for r in branch}) == 1


def test_checkpoints_with_different_sample_counts_share_one_compilation(tmp_path, model):
    # Sample arrays are padded to fixed sizes, so a scan over many checkpoints compiles `fit`
    # once per depth however many samples each checkpoint has.
    first = _collect_store(tmp_path, "icml_cpu", model, specs=64, step=100)
    second = _collect_store(tmp_path, "icml_cpu", model, specs=40, step=200)
    options = scan.ScanOptions(depths=("linear",), tasks=("facing", "position"), offsets=(-1, 0),
                               seeds=2, fit=fit.FitOptions(steps=6, batch_size=8, eval_every=3))
    compiled = fit.compiled_fit(fit.probe_mesh())
    before = compiled._cache_size()
    rows = scan.scan_step(first, options)
    assert compiled._cache_size() == before + 1
    rows += scan.scan_step(second, options)
    assert compiled._cache_size() == before + 1
    assert len({r["train_samples"] for r in rows}) == 2  # the two really differ


def test_unknown_tasks_are_rejected():
    with pytest.raises(ValueError, match="unknown \\['brnch'\\]"):
        scan.ScanOptions(tasks=("brnch",))
    assert "branch" in scan.ScanOptions().tasks
    assert not set(scan.ScanOptions().tasks) & {"turns", "ego_start_position"}  # on request only


def test_starting_frame_tasks_on_request(tmp_path, model):
    directory = _collect_store(tmp_path, "icml_cpu", model)
    options = scan.ScanOptions(depths=("linear",), tasks=("turns", "ego_start_position"),
                               offsets=(-1, 0), seeds=1,
                               fit=fit.FitOptions(steps=4, batch_size=16, eval_every=2))
    rows = scan.scan_step(directory, options)
    assert len(rows) == scan.probes_per_step(options, 1 + len(ALTS)) == 2 * 2 * 2
    assert sorted({r["task"] for r in rows}) == ["ego_start_position", "turns"]
    assert all(0 <= r["test_acc"] <= 1 and 0 < r["majority_acc"] <= 1 for r in rows)


def test_statement_ranges_probe_those_statements_and_say_so(tmp_path, model):
    directory = _collect_store(tmp_path, "icml_cpu", model)
    options = scan.ScanOptions(depths=("linear",), tasks=("facing", "initial_facing"),
                               offsets=(-1,), seeds=1,
                               fit=fit.FitOptions(steps=4, batch_size=16, eval_every=2))
    every = scan.scan_step(directory, options)
    first = scan.scan_step(directory, dataclasses.replace(options, statements=(0, 1)))
    assert all("statements" not in r for r in every)
    assert all(r["statements"] == [0, 1] for r in first)
    # one sample per program (its first action) against one per action
    collection = store.read_split(directory, "train")
    assert first[0]["train_samples"] == (collection["num_actions"][:, 0, 0] > 0).sum()
    assert first[0]["train_samples"] < every[0]["train_samples"]
    for bad in ((1,), (2, 2), (-1, 3)):
        with pytest.raises(ValueError, match="statements"):
            scan.ScanOptions(statements=bad)
    beyond = dataclasses.replace(options, statements=(50, 60))       # no program is that long
    with pytest.raises(scan.NoSamplesError, match=r"statements \(50, 60\)"):
        scan.scan_step(directory, beyond)


def test_labels_from_all_shown_examples_give_one_sample_with_five_outputs(tmp_path, model):
    """The original's option: each state once, a probe output (the task's heads) per shown
    example, scored as the mean over outputs; chance is the mean of each output's."""
    directory = _collect_store(tmp_path, "icml_cpu", model)
    options = scan.ScanOptions(depths=("linear",), tasks=("facing", "position"), offsets=(-1,),
                               seeds=1, fit=fit.FitOptions(steps=4, batch_size=16, eval_every=2))
    one = scan.scan_step(directory, options)
    every = scan.scan_step(directory, dataclasses.replace(options, example=labels.ALL_EXAMPLES))
    assert all("example" not in r for r in one)
    assert all(r["example"] == labels.ALL_EXAMPLES for r in every)
    # every example's run has as many actions (straight-line programs): the same samples
    assert [r["train_samples"] for r in every] == [r["train_samples"] for r in one]
    collection = store.read_split(directory, "train")
    samples = labels.aligned_every_example(collection, (-1,))
    y = labels.labels_every_example(collection, samples, 6, 6)
    assert y["facing"].shape[-1] == 5 and y["position"].shape[-1] == 10   # 5 outputs
    train_y = y["facing"][0, :, 0]
    test_collection = store.read_split(directory, "test")
    test_y = labels.labels_every_example(
        test_collection, labels.aligned_every_example(test_collection, (-1,)), 6, 6)["facing"][0, :, 0]
    facing = next(r for r in every if r["task"] == "facing" and r["semantics"] == "original")
    chance = np.mean([scan.majority_accuracy(train_y[:, [e]], test_y[:, [e]]) for e in range(5)])
    assert facing["majority_acc"] == pytest.approx(chance)
    for r in every:      # a mean over five outputs of 0/1 scores per sample
        assert 0 <= r["test_acc"] <= 1
    with pytest.raises(ValueError, match="example: -2"):
        scan.ScanOptions(example=-2)


def test_probe_results_do_not_depend_on_the_memory_budget():
    """Each probe's key comes from its index, not from the chunk `memory_gib` puts it in."""
    rng = np.random.default_rng(0)
    num, n, d = 5, 64, 8
    xs = [rng.normal(size=(n, d)).astype(np.float32) for _ in range(3)]
    ys = [rng.integers(0, 4, size=(num, n, 1)).astype(np.int32) for _ in range(3)]
    layout = models.HeadLayout.of((4,), 1, 4)
    stacked = {f: np.stack([getattr(layout, f)] * num) for f in ("mask", "offset", "valid")}
    roomy = scan.ScanOptions(fit=fit.FitOptions(steps=8, batch_size=16, eval_every=2))
    tight = dataclasses.replace(roomy, memory_gib=1e-9)
    assert jobs.chunk_size(roomy, num, (d, 4)) == num and jobs.chunk_size(tight, num, (d, 4)) == 1
    together, one_by_one = (jobs.train_group(xs, (n, n, n), ys, stacked, 4, options, "mlp1",
                                              0, 0, None) for options in (roomy, tight))
    assert one_by_one == together
    assert len({r["test_acc"] for r in together}) > 1      # the probes differ from each other


def test_majority_accuracy_is_the_chance_level_of_the_most_frequent_train_label():
    train = np.array([[1, 2], [1, 2], [0, 2], [1, 0]])
    test = np.array([[1, 2], [1, 0], [1, 2], [0, 0]])
    assert scan.majority_accuracy(train, test) == 0.5   # (1, 2) both heads together
    assert np.isnan(scan.majority_accuracy(train[:0], test))


def test_per_layer_collections_scan_every_layer_and_their_mean(tmp_path, model, monkeypatch):
    """`collect --per-layer` states are stored specs first ([N, layers, P, d], several shards);
    the scan probes their mean (rows without `layer`, the same inputs as a mean collection) and
    each layer (rows with `layer`)."""
    monkeypatch.setattr(store, "SHARD_SPECS", 24)                  # 64 specs -> 3 shards
    data = config_files.load("icml_cpu").data
    records = next(generate.generate_split(data, "test", chunk_size=64))
    records = {k: v[:64] for k, v in records.items()}
    grammar, layout = program_grammar(data), dataset_config.layout(data)
    meta = {"step": 3, "alts": list(ALTS), "forced": True, "conditions": False,
            "layout": {"height": layout.height, "width": layout.width, "n_shown": layout.n_shown}}
    parts = {}
    for per_layer in (False, True):
        part = collect.collect_batch(model, layout, records, grammar, max_steps=data.max_steps,
                                     alts=ALTS, forced=True, per_layer=per_layer)
        parts[per_layer] = str(tmp_path / f"per_layer_{per_layer}")
        for split in ("train", "val", "test"):
            store.write_split(parts[per_layer], split, part, {**meta, "per_layer": per_layer})
    mean = store.read_split(parts[False], "train")["states"]
    layered = store.read_split(parts[True], "train")["states"]
    layers = model.n_layers + 1
    assert layered.shape == (64, layers) + mean.shape[1:]
    # The count comes from the index; one without it (older kareljax) is named, not guessed.
    assert "layers" not in store.read_index(parts[True])
    with pytest.raises(store.CollectionReadError, match="--per-layer --overwrite"):
        store.layer_count(parts[True])
    assert store.layer_count(parts[False]) == 0
    assert store.layer_count(parts[True], {**store.read_index(parts[True]),
                                           "layers": layers}) == layers
    views = scan.layer_views({s: store.read_split(parts[True], s) for s in ("train", "val", "test")})
    assert [layer for layer, _ in views] == [None] + list(range(layers))
    np.testing.assert_allclose(views[0][1]["train"]["states"], mean, atol=1e-5)

    options = scan.ScanOptions(depths=("linear",), tasks=("facing",), offsets=(0,), seeds=1,
                               fit=fit.FitOptions(steps=4, batch_size=16, eval_every=2))
    real = labels.aligned
    aligned_calls = []
    monkeypatch.setattr(labels, "aligned", lambda *a, **k: aligned_calls.append(1) or real(*a, **k))
    rows = scan.scan_step(parts[True], options)
    assert len(aligned_calls) == 3     # samples and labels once per split, not once per layer
    assert len(rows) == scan.probes_per_step(options, 1 + len(ALTS), layers=layers)
    assert sorted({r.get("layer", -1) for r in rows}) == [-1] + list(range(layers))
    assert all(0 <= r["test_acc"] <= 1 for r in rows)

    layers_first = {s: {**c, "states": np.moveaxis(c["states"], 0, 1)}  # the old layout
                    for s, c in ((s, store.read_split(parts[True], s)) for s in ("train", "val", "test"))}
    with pytest.raises(ValueError, match="--overwrite"):
        scan.layer_views(layers_first)


def test_sample_limits_draw_a_subsample_and_record_what_was_found(tmp_path, model):
    """max_train_samples / max_eval_samples below the aligned samples: every probe (state tasks and
    branch) trains on a seeded subsample; the rows say how many were used and how many found."""
    directory = _collect_store(tmp_path, "cond_cpu", model)
    full = scan.scan_step(directory, OPTIONS)
    limited = dataclasses.replace(OPTIONS, seeds=1, max_train_samples=10, max_eval_samples=8)
    rows = scan.scan_step(directory, limited)
    for task in ("facing", "branch"):
        found = next(r for r in full if r["task"] == task)
        assert all(found[f"{s}_samples"] == found[f"{s}_available"] for s in scan.SPLITS)
        row = next(r for r in rows if r["task"] == task)
        assert (row["train_samples"], row["val_samples"], row["test_samples"]) == (
            min(10, found["train_samples"]), min(8, found["val_samples"]),
            min(8, found["test_samples"]))
        assert all(row[f"{s}_available"] == found[f"{s}_samples"] for s in scan.SPLITS)
    assert next(r for r in rows if r["task"] == "facing")["train_available"] > 10
    assert scan.scan_step(directory, limited) == rows          # the same subsample every time
