"""The grain pipeline: batch contents, determinism by seed, exact resume, epochs, host shards."""
import numpy as np
import pytest

from kareljax.data import batches, dataset_config, pipeline, tokens


def _take(it, n):
    return [next(it) for _ in range(n)]


def test_batch_contents(small_data):
    layout = dataset_config.layout(small_data)
    batch = next(iter(pipeline.batches(small_data, batch_size=16, seed=0)))
    assert batch["tokens"].shape == (16, layout.max_length) and batch["tokens"].dtype == np.int32
    assert set(batch["length"].tolist()) <= set(small_data.train_lengths)
    for ids, valid, loss, length in zip(batch["tokens"], batch["valid"], batch["loss_mask"],
                                         batch["length"]):
        end = int(valid.sum())
        assert valid[:end].all() and (ids[end:] == tokens.PAD).all() and ids[end - 1] == tokens.CLOSE
        assert not loss[0] and loss[1:end].all() and not loss[end:].any()
        program = tokens.decode_program(ids[layout.program_start:])
        assert len(program.body) == length
        assert (ids[:layout.program_start + 1] != tokens.PAD).all()


def test_program_only_loss(small_data):
    layout = dataset_config.layout(small_data)
    batch = next(iter(pipeline.batches(small_data, batch_size=8, seed=0, loss_on="program")))
    mask = batch["loss_mask"]
    assert not mask[:, :layout.program_start + 1].any()
    np.testing.assert_array_equal(mask.sum(1), batch["length"] + 1)  # the actions and `}`


def test_training_batch_equals_encode_example(small_data):
    reader = pipeline.DatasetReader(small_data, "val")
    from kareljax.data import generate
    records = reader.read(np.arange(5))
    layout = reader.layout
    got = batches.training_batch(layout, records)["tokens"]
    inputs = generate.worlds_from_glyphs(records["inputs"])
    for i in range(5):
        # outputs as the LM sees them equal the input-style decoding of their glyphs
        expected = tokens.encode_example(
            layout, generate.worlds_from_glyphs(records["inputs"][i]),
            generate.worlds_from_glyphs(records["outputs"][i]), records["program"][i])
        np.testing.assert_array_equal(got[i], expected)
    assert inputs.walls.shape[0] == 5


def test_deterministic_by_seed(small_data):
    a = _take(iter(pipeline.batches(small_data, batch_size=32, seed=3)), 4)
    b = _take(iter(pipeline.batches(small_data, batch_size=32, seed=3)), 4)
    c = _take(iter(pipeline.batches(small_data, batch_size=32, seed=4)), 4)
    assert all((x["tokens"] == y["tokens"]).all() for x, y in zip(a, b))
    assert not all((x["tokens"] == y["tokens"]).all() for x, y in zip(a, c))


@pytest.mark.parametrize("source", ["memory", "files"])
def test_resumes_exactly_after_an_interruption(small_data, source):
    ds = pipeline.batches(small_data, batch_size=64, seed=0, source=source)
    it = iter(ds)
    _take(it, 7)
    state = it.get_state()
    expected = _take(it, 25)  # crosses an epoch boundary (1000 programs, 15 batches an epoch)
    del it
    resumed = iter(pipeline.batches(small_data, batch_size=64, seed=0, source=source))
    resumed.set_state(state)
    for want, got in zip(expected, _take(resumed, 25)):
        for name in want:
            np.testing.assert_array_equal(want[name], got[name])


def test_memory_and_files_agree(small_data):
    a = _take(iter(pipeline.batches(small_data, batch_size=50, seed=1, source="memory")), 3)
    b = _take(iter(pipeline.batches(small_data, batch_size=50, seed=1, source="files")), 3)
    assert all((x["tokens"] == y["tokens"]).all() for x, y in zip(a, b))


def test_epochs_visit_every_program_once_in_new_orders():
    index = pipeline.BatchIndices(100, 10, seed=0)
    epoch0 = np.concatenate([index[i] for i in range(10)])
    epoch1 = np.concatenate([index[i] for i in range(10, 20)])
    assert sorted(epoch0) == sorted(epoch1) == list(range(100))
    assert not (epoch0 == epoch1).all()


def test_host_shards_are_disjoint():
    hosts = [pipeline.BatchIndices(100, 10, seed=0, shard_index=h, shard_count=2) for h in (0, 1)]
    assert len(hosts[0]) // hosts[0].num_epochs == 5
    rows = [np.concatenate([h[i] for i in range(5)]) for h in hosts]
    assert not set(rows[0]) & set(rows[1]) and len(set(rows[0]) | set(rows[1])) == 100


def test_errors_name_the_problem(small_data, tmp_path):
    with pytest.raises(pipeline.MissingDatasetError, match="kareljax data build"):
        pipeline.DatasetReader(dataset_config_with(small_data, data_dir=str(tmp_path)), "train")
    with pytest.raises(ValueError, match="no batch of 5000"):
        pipeline.batches(small_data, batch_size=5000)
    with pytest.raises(ValueError, match="loss_on"):
        pipeline.batches(small_data, batch_size=4, loss_on="code")


def dataset_config_with(data, **changes):
    copy = data.copy_and_resolve_references()
    for key, value in changes.items():
        copy[key] = value
    return copy
