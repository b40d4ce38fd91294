"""Building the TFDS `karel` dataset: exact per-length counts, reproducible bytes, the slow TFDS
path giving the same records, readable with tfds.data_source, outputs equal the reference."""
import collections
import logging
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from kareljax.data import dataset_config, export, generate, pipeline, tfds_karel, tokens
from kareljax.karel import parser, reference, world

from tests.data.conftest import build, small_config


def _data_files(data):
    root = pathlib.Path(tfds_dir(data))
    return {p.name: p.read_bytes() for p in sorted(root.glob("karel-*.array_record-*"))}


def tfds_dir(data):
    return pathlib.Path(data.data_dir) / "karel" / dataset_config.dataset_name(data) / "1.0.0"


@pytest.mark.parametrize("split, size", [("train", 2000), ("val", 200), ("test", 200)])
def test_exact_per_length_counts_in_a_shuffled_order(small_data, split, size):
    reader = pipeline.DatasetReader(small_data, split)
    lengths = reader.read_all()["length"]
    assert len(lengths) == size
    assert collections.Counter(lengths.tolist()) == {n: size // 10 for n in range(1, 11)}
    assert not (np.diff(lengths.astype(int)) >= 0).all()  # not sorted
    np.testing.assert_array_equal(reader.lengths(), lengths)  # the index written beside


def test_readable_with_tfds_data_source(small_data):
    source = tfds.data_source(f"karel/{dataset_config.dataset_name(small_data)}",
                              data_dir=small_data.data_dir, split="test")
    record = source[7]
    assert record["inputs"].shape == (10, 4, 4) and record["program"].shape == (16,)
    program = tokens.decode_program(record["program"])
    assert len(program.body) == int(record["length"])


def test_builders_and_is_built_without_tfds_warnings(small_data, tmp_path, caplog):
    # TFDS warns "Variant folder ... has no dataset_info.json" when asked about a dataset that
    # is not there yet, just before kareljax builds it, and "Using custom data configuration:
    # <the whole config>" for every config but the presets' own (any --config.data override):
    # kareljax asks quietly.
    with caplog.at_level(logging.WARNING, logger="absl"):
        assert not tfds_karel.is_built(tfds_karel.builder(small_config(tmp_path / "none")))
        assert tfds_karel.is_built(tfds_karel.builder(small_data))
        logging.getLogger("absl").warning("Variant folder %s: a later warning", "x")
        logging.getLogger("absl").warning("Using custom data configuration: %s", "later")
    messages = [r.getMessage() for r in caplog.records]
    # The filters are gone afterwards.
    assert messages == ["Variant folder x: a later warning",
                        "Using custom data configuration: later"]


def test_same_seed_same_bytes_other_seed_different(small_data, tmp_path):
    again = small_config(tmp_path / "again")
    build(again)
    first, second = _data_files(small_data), _data_files(again)
    assert first.keys() == second.keys() and len(first) == 3
    assert all(first[name] == second[name] for name in first)
    other = small_config(tmp_path / "other", "data.seed=1")
    build(other)
    third = _data_files(other)
    assert all(first[name] != third[name] for name in first)


def test_fast_path_writes_the_records_of_the_tfds_path(small_data, tmp_path):
    data = small_config(tmp_path)
    builder = tfds_karel.builder(data)
    builder.slow_path = True
    builder.download_and_prepare()
    for split in ("val", "test", "train"):
        slow = pipeline.DatasetReader(data, split).read_all()
        fast = pipeline.DatasetReader(small_data, split).read_all()
        for name in slow:
            np.testing.assert_array_equal(slow[name], fast[name])


def test_exported_outputs_equal_the_reference_interpreter(small_data):
    reader = pipeline.DatasetReader(small_data, "test")
    records = export.to_golden(reader.read(np.arange(60)), small_data.max_steps)
    for record in records:
        program = parser.parse(record["code"])
        assert len(record["examples"]) == 10
        for example in record["examples"]:
            result = reference.run(program, world.from_text(example["input"]))
            assert example["output"] == world.to_text(result.world)
            assert example["output_exact"] == world.to_exact(result.world)


def test_export_detects_a_corrupt_output(small_data):
    batch = pipeline.DatasetReader(small_data, "val").read(np.arange(4))
    batch["outputs"] = batch["outputs"].copy()
    batch["outputs"][2, 3] = np.roll(batch["outputs"][2, 3], 1)
    with pytest.raises(export.ExportMismatchError, match="record 2, example 3"):
        export.to_golden(batch, small_data.max_steps)


def test_inputs_are_exact_worlds(small_data):
    batch = pipeline.DatasetReader(small_data, "val").read(np.arange(50))
    worlds = generate.worlds_from_glyphs(batch["inputs"])
    np.testing.assert_array_equal(np.asarray(generate.glyphs(worlds)), batch["inputs"])
    assert worlds.markers.max() == 1


def test_conditional_dataset(tmp_path):
    data = small_config(tmp_path, "data.preset=cond_small", "data.no_conditionals=False",
                        "data.no_noops=True", "data.max_program_tokens=39",
                        "data.num_train=100", "data.num_val=100", "data.num_test=100")
    build(data)
    batch = pipeline.DatasetReader(data, "test").read_all()
    assert collections.Counter(batch["length"].tolist()) == {n: 10 for n in range(1, 11)}
    kinds = collections.Counter()
    for ids, length in zip(batch["program"], batch["length"]):
        program = tokens.decode_program(ids)
        kinds.update(type(s).__name__ for s in program.body)
    assert kinds["If"] + kinds["IfElse"] > 0
    records = export.to_golden(batch, data.max_steps)  # outputs re-checked by the interpreter
    for record in records[:30]:
        program = parser.parse(record["code"])
        for example in record["examples"]:
            assert example["output"] == world.to_text(
                reference.run(program, world.from_text(example["input"])).world)
