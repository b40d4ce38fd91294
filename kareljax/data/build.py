"""A config's TFDS dataset built on disk, and a split of it exported as golden-format JSON lines
(what `kareljax data build|export` run).

    seconds = build.build(config.data)          # 0.0 when it was built already
    count = build.export_split(config.data, "test", "test.jsonl.gz", limit=3000)
"""
from __future__ import annotations

import sys
import time

import ml_collections
import numpy as np

EXPORT_BATCH = 4096


def build(data: ml_collections.ConfigDict, progress: bool = True) -> float:
    """Builds the dataset of `data` unless it is built already; returns the seconds it took."""
    from tqdm import tqdm
    from kareljax.data import tfds_karel

    builder = tfds_karel.builder(data)
    if tfds_karel.is_built(builder):
        return 0.0
    if progress:
        builder.progress = lambda **kw: tqdm(file=sys.stderr, **kw)
    start = time.perf_counter()
    builder.download_and_prepare()
    return time.perf_counter() - start


def split_sizes(data: ml_collections.ConfigDict) -> tuple[str, dict[str, int]]:
    """(where the built dataset lives, its records per split)."""
    from kareljax.data import dataset_config, tfds_karel

    builder = tfds_karel.builder(data)
    return str(builder.data_path), {s: builder.info.splits[s].num_examples
                                    for s in dataset_config.SPLITS}


def export_split(data: ml_collections.ConfigDict, split: str, output: str,
                 limit: int | None = None) -> int:
    """Writes the first `limit` records (None: all) of `split` to `output` as golden JSON lines
    (gzipped for .gz), building the dataset first if needed; returns how many it wrote."""
    from kareljax.data import dataset_config, export, pipeline
    from kareljax.karel import records

    dataset_config.split_size(data, split)          # ConfigError for an unknown split
    build(data)
    reader = pipeline.DatasetReader(data, split)
    count = len(reader) if limit is None else min(limit, len(reader))
    out = []
    for start in range(0, count, EXPORT_BATCH):
        batch = reader.read(np.arange(start, min(count, start + EXPORT_BATCH)))
        try:
            out += export.to_golden(batch, data.max_steps)
        except export.ExportMismatchError as e:
            raise export.ExportMismatchError(f"{reader.name} {split}: {e}") from e
    records.write_records(output, out)
    return count
