"""Training batches as global arrays on the mesh, shaped [grad_accum, micro_batch, L].

- `DatasetBatches`: the built TFDS train split through grain. Each process reads its own
  1/process_count of every global batch (`shard_index` = its process index); the iterator state it
  saves is the same on every process (batch counts move in lockstep), so process 0's copy is kept.
- `FreshBatches`: generated on device from (train.seed, step), so resuming needs no state.

`ensure_dataset` builds the dataset once (process 0; the others wait).
"""
from __future__ import annotations

import time

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from kareljax.config_files import ConfigError
from kareljax.train import mesh as mesh_lib
from kareljax.train.step import BATCH_KEYS


def ensure_dataset(data: ml_collections.ConfigDict, log=print) -> None:
    from kareljax.data import tfds_karel
    if jax.process_index() == 0:
        builder = tfds_karel.builder(data)
        if not tfds_karel.is_built(builder):
            log(f"building the dataset {builder.data_path} (once)")
            start = time.perf_counter()
            builder.download_and_prepare()
            log(f"built {builder.data_path} in {time.perf_counter() - start:.1f} s")
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("kareljax_dataset_built")


def _sharding(mesh):
    return mesh_lib.batch_sharding(mesh, ndim=3, batch_axis=1)


class DatasetBatches:
    def __init__(self, config: ml_collections.ConfigDict, mesh, saved: dict | None = None):
        from kareljax.data import pipeline
        train = config.train
        count, index = jax.process_count(), jax.process_index()
        self.accum, self.local = train.grad_accum, train.batch_size // count
        self.sharding = _sharding(mesh)
        dataset = pipeline.batches(config.data, "train", batch_size=self.local, seed=train.seed,
                                   loss_on=train.loss_on, shard_index=index, shard_count=count)
        self.iterator = iter(dataset)
        if saved:
            self.iterator.set_state(saved["iterator"])
        self._state = self.iterator.get_state()

    def next(self, step: int) -> dict:
        batch = next(self.iterator)
        self._state = self.iterator.get_state()
        return {k: jax.make_array_from_process_local_data(
                    self.sharding, np.reshape(batch[k], (self.accum, -1) + batch[k].shape[1:]))
                for k in BATCH_KEYS}

    def state(self) -> dict:
        """The iterator's position after the last batch taken (JSON-able)."""
        return {"source": "dataset", "iterator": self._state}


class FreshBatches:
    def __init__(self, config: ml_collections.ConfigDict, mesh, saved: dict | None = None):
        from kareljax.data import fresh
        train = config.train
        make = fresh.fresh_batches(config.data, train.batch_size, train.loss_on)
        accum, seed = train.grad_accum, train.seed
        shardings = {k: _sharding(mesh) for k in BATCH_KEYS}

        def split(step):
            batch = make(seed, step)
            return {k: batch[k].reshape((accum, -1) + batch[k].shape[1:]) for k in BATCH_KEYS}

        self._make = jax.jit(split, out_shardings=shardings)

    def next(self, step: int) -> dict:
        return self._make(np.int32(step))

    def state(self) -> dict:
        return {"source": "fresh"}


def batch_source(config: ml_collections.ConfigDict, mesh, saved: dict | None = None):
    """The configured source, positioned at `saved` (a checkpoint's data state) if given."""
    source = config.train.data_source
    if saved and saved.get("source") != source:
        raise ConfigError(f"train.data_source: the checkpoint was trained on "
                          f"{saved.get('source')!r} data, the config says {source!r}")
    if source == "fresh":
        return FreshBatches(config, mesh, saved)
    return DatasetBatches(config, mesh, saved)
