"""The grain input pipeline: shuffled training batches from a built `karel` dataset.

    ds = pipeline.batches(config.data, "train", batch_size=64, seed=0)
    it = iter(ds)
    batch = next(it)             # {tokens, loss_mask, valid, length} (see `batches`)
    state = it.get_state()       # save with the checkpoint...
    it.set_state(state)          # ...and resume exactly where it was

Element i of the grain dataset is batch i: the permutation of epoch i // batches_per_epoch (seeded by
(seed, epoch)) is sliced, the rows are gathered and tokenized as arrays (`batches`), so no Python
runs per example. Records are read once into memory (`source="memory"`, the default when the
split's records take under `MEMORY_LIMIT_BYTES`; 1 M icml programs take about 0.8 GB) or per batch
from the array_record files (`source="files"`, for datasets larger than memory).
"""
from __future__ import annotations

import concurrent.futures
import functools
import os

import grain
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from array_record.python import array_record_module

from kareljax.data import batches as batch_arrays
from kareljax.data import dataset_config, example_codec, tfds_karel
from kareljax.errors import KareljaxError

MEMORY_LIMIT_BYTES = 4 << 30
_FOREVER_EPOCHS = 10 ** 9
_LENGTH_CHUNK = 65536


class MissingDatasetError(KareljaxError, FileNotFoundError):
    """The dataset has not been built (run `kareljax data build`)."""


class DatasetReadError(KareljaxError, RuntimeError):
    """A built dataset's file does not read back (damaged, or partly copied). The message says
    how to build it again: it is generated from its config, so a rebuild writes the same bytes."""


class DatasetReader:
    """The records of one split of a built dataset, read a batch at a time or all at once."""

    def __init__(self, data: ml_collections.ConfigDict, split: str, data_dir: str | None = None):
        dataset_config.validate(data)
        self.data, self.split = data, split
        self.layout = dataset_config.layout(data)
        self.codec = example_codec.Codec(self.layout, data.num_examples)
        self.name = f"karel/{dataset_config.dataset_name(data)}"
        data_dir = os.path.expanduser(data_dir or data.data_dir)
        try:
            builder = tfds.builder(self.name, data_dir=data_dir)
            info = builder.info.splits[split]
            self.raw = builder.as_data_source(split=split).data_source
        except Exception as e:  # TFDS raises several types for a missing dataset or split
            raise MissingDatasetError(
                f"dataset {self.name} (split {split!r}) not found under {data_dir}: build it with "
                f"`kareljax data build --config ...` ({type(e).__name__}: {e})") from None
        self._data_dir = os.fspath(builder.data_dir)
        self.files = [os.fspath(p) for p in info.filepaths]
        self.shard_lengths = list(info.shard_lengths)
        self._lengths_file = os.path.join(os.fspath(builder.data_dir),
                                          tfds_karel.pipeline_lengths_filename(split))

    def __len__(self) -> int:
        return len(self.raw)

    def read(self, indices) -> dict:
        """Records {program, length, inputs, outputs} [len(indices), ...] in the given order."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        try:
            return self.codec.decode(self.raw.__getitems__(indices.tolist()))
        except (RuntimeError, OSError) as e:
            raise self._damaged(e, self.files) from e

    def _read_file(self, path: str, count: int) -> dict:
        try:
            reader = array_record_module.ArrayRecordReader(path, "readahead_buffer_size:0")
            try:
                return self.codec.decode(reader.read(0, count))
            finally:
                reader.close()
        except (RuntimeError, OSError) as e:
            raise self._damaged(e, [path]) from e

    def _damaged(self, error: Exception, files: list[str]) -> DatasetReadError:
        return DatasetReadError(
            f"dataset {self.name} ({self.split} split: {', '.join(files)}) does not read back "
            f"({type(error).__name__}: {str(error)[:200]}); remove {self._data_dir} and run "
            "`kareljax data build --config ...` with this run's config to build it again (the "
            "same bytes: it is generated from the config's seed)")

    def read_all(self) -> dict:
        """Every record of the split, in order (file by file, two files at a time)."""
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            parts = list(pool.map(self._read_file, self.files, self.shard_lengths))
        return {name: np.concatenate([p[name] for p in parts]) for name in example_codec.FIELDS}

    def lengths(self) -> np.ndarray:
        """uint8 [N]: every record's program length (from the index the build writes beside the
        split, or one pass over the split)."""
        if os.path.exists(self._lengths_file):
            lengths = np.load(self._lengths_file)
            if lengths.shape == (len(self),):
                return lengths
        return np.concatenate([self.read(np.arange(s, min(s + _LENGTH_CHUNK, len(self))))["length"]
                               for s in range(0, len(self), _LENGTH_CHUNK)])


class BatchIndices:
    """Row indices of every batch, as a grain random-access source: item i = batch i.

    Epoch e visits the rows in the order `default_rng([seed, e]).permutation` (or in order without
    shuffling); host `shard_index` of `shard_count` takes every shard_count-th batch of it. The
    incomplete batch at the end of an epoch is dropped.
    """

    def __init__(self, num_rows: int, batch_size: int, *, seed: int, shuffle: bool = True,
                 num_epochs: int | None = None, shard_index: int = 0, shard_count: int = 1):
        self.num_rows, self.batch_size, self.seed, self.shuffle = num_rows, batch_size, seed, shuffle
        self.shard_index, self.shard_count = shard_index, shard_count
        self.per_epoch = num_rows // (batch_size * shard_count)
        if self.per_epoch == 0:
            raise ValueError(f"{num_rows} rows make no batch of {batch_size} per host "
                             f"({shard_count} hosts)")
        self.num_epochs = _FOREVER_EPOCHS if num_epochs is None else num_epochs

    def __len__(self) -> int:
        return self.per_epoch * self.num_epochs

    @functools.lru_cache(maxsize=2)
    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_rows)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_rows)

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise IndexError(i)
        epoch, j = divmod(int(i), self.per_epoch)
        start = (j * self.shard_count + self.shard_index) * self.batch_size
        return self.order(epoch)[start:start + self.batch_size]


class _ToBatch:
    """Row indices [B] -> training batch (a grain map transform)."""

    def __init__(self, rows, layout, loss_on: str):
        self.rows, self.layout, self.loss_on = rows, layout, loss_on

    def __call__(self, indices):
        if isinstance(self.rows, DatasetReader):
            records = self.rows.read(indices)
        else:
            records = {name: values[indices] for name, values in self.rows.items()}
        return batch_arrays.training_batch(self.layout, records, self.loss_on)


def batches(data: ml_collections.ConfigDict, split: str = "train", *, batch_size: int,
            seed: int = 0, loss_on: str = "all", num_epochs: int | None = None,
            shard_index: int = 0, shard_count: int = 1, data_dir: str | None = None,
            lengths: tuple[int, ...] | None = None, shuffle: bool = True, source: str = "auto",
            num_threads: int = 2) -> grain.IterDataset:
    """Batches of one split as a grain IterDataset (iterate it; its iterator's state resumes).

    `lengths` (default: the config's `train_lengths` for the train split, all otherwise) selects
    the programs by length; `num_epochs` None repeats forever with a new order every epoch;
    `shard_index`/`shard_count` split the batches between hosts; `source` is "memory", "files"
    or "auto".
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index {shard_index} is not in 0..{shard_count - 1}")
    if loss_on not in batch_arrays.LOSS_ON:
        raise ValueError(f"loss_on must be one of {batch_arrays.LOSS_ON}, got {loss_on!r}")
    if source not in ("auto", "memory", "files"):
        raise ValueError(f"source must be 'auto', 'memory' or 'files', got {source!r}")
    reader = DatasetReader(data, split, data_dir)
    if lengths is None and split == "train":
        lengths = dataset_config.train_lengths(data)
    keep = (np.arange(len(reader)) if lengths is None
            else np.flatnonzero(np.isin(reader.lengths(), list(lengths))))
    if source == "auto":
        source = ("memory" if len(reader) * reader.codec.record_size <= MEMORY_LIMIT_BYTES
                  else "files")
    if source == "memory":
        everything = reader.read_all()
        rows = {name: values[keep] for name, values in everything.items()}
        num_rows = len(keep)
    else:
        rows, num_rows = reader, len(keep)
    try:
        index = BatchIndices(num_rows, batch_size, seed=seed, shuffle=shuffle,
                             num_epochs=num_epochs, shard_index=shard_index,
                             shard_count=shard_count)
    except ValueError as e:
        raise ValueError(f"the {split} split (lengths {lengths}): {e}") from None
    ds = grain.MapDataset.source(index)
    if source == "files" and lengths is not None:
        ds = ds.map(lambda rows_of_keep: keep[rows_of_keep])
    ds = ds.map(_ToBatch(rows, reader.layout, loss_on))
    return ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads,
                                                prefetch_buffer_size=2 * num_threads))
