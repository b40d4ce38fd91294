"""The stored form of one program and its worlds, and fast batch (de)serialization of it.

A record holds, as uint8 arrays (TFDS `Tensor` features with BYTES encoding):

* `program` [max_program_tokens]: token ids (`kareljax.data.tokens`), `run{` ... `}`, then PAD;
* `length` []: the program's length (docs/spec.md §4; the generator's statement budget);
* `inputs`, `outputs` [num_examples, h, w]: each world's interior as cell glyph indices into
  `tokens.CELL_GLYPHS` (0 wall, 1 empty, 2-5 hero N E S W, 6-14 markers 1-9+), i.e. token id
  minus `tokens.WALL`. Inputs are exact (at most one marker per cell, none under the hero);
  outputs are what the LM sees (markers under the hero hidden, counts >= 9 shown as 9). Exact
  output states come from re-running the program (`kareljax.data.dataset.exact_outputs`).

Every record of a dataset has the same size and layout, so a batch is serialized by writing the
payloads into a tiled template, and read back by slicing, instead of one protobuf per record. The
bytes are those of `tf.train.Example.SerializeToString(deterministic=True)` (map keys sorted), which
TFDS parses like its own; deterministic so that the same seed gives the same files.
"""
from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_serializer

from kareljax.data import tokens

FIELDS = ("program", "length", "inputs", "outputs")


def features(layout: tokens.Layout, num_examples: int) -> tfds.features.FeaturesDict:
    grid = (num_examples, layout.height, layout.width)
    shapes = {"program": (layout.max_program_tokens,), "length": (), "inputs": grid,
              "outputs": grid}
    return tfds.features.FeaturesDict({
        name: tfds.features.Tensor(shape=shapes[name], dtype=np.uint8,
                                   encoding=tfds.features.Encoding.BYTES)
        for name in FIELDS})


def serialize_one(feature_dict: tfds.features.FeaturesDict, example: dict) -> bytes:
    """One record the slow way (TFDS encoding, deterministic protobuf bytes)."""
    serializer = example_serializer.ExampleSerializer(feature_dict.get_serialized_info())
    proto = serializer.get_tf_example(feature_dict.encode_example(example))
    return proto.SerializeToString(deterministic=True)


class Codec:
    """Batch encoder/decoder for the records of one layout."""

    def __init__(self, layout: tokens.Layout, num_examples: int):
        self.features = features(layout, num_examples)
        self.shapes = {name: self.features[name].shape for name in FIELDS}
        zero = {name: np.zeros(shape, np.uint8) for name, shape in self.shapes.items()}
        template = np.frombuffer(serialize_one(self.features, zero), np.uint8)
        self.template = template
        self.offsets = {}
        payload = np.zeros(len(template), bool)
        for name, shape in self.shapes.items():
            probe = dict(zero, **{name: np.full(shape, 0xFF, np.uint8)})
            changed = np.flatnonzero(np.frombuffer(serialize_one(self.features, probe), np.uint8)
                                     != template)
            size = int(np.prod(shape, dtype=np.int64))
            if len(changed) != size or changed[-1] - changed[0] + 1 != size:
                raise RuntimeError(f"cannot locate the payload of {name!r} in a serialized record")
            self.offsets[name] = int(changed[0])
            payload[changed] = True
        self._frame = ~payload
        self.record_size = len(template)

    def encode(self, batch: dict) -> np.ndarray:
        """uint8 [B, record_size]: one serialized record per row, from arrays [B, ...]."""
        n = len(batch["length"])
        out = np.broadcast_to(self.template, (n, self.record_size)).copy()
        for name, shape in self.shapes.items():
            values = np.asarray(batch[name])
            if values.shape != (n,) + shape:
                raise ValueError(f"{name}: expected shape {(n,) + shape}, got {values.shape}")
            if values.dtype != np.uint8:
                if values.min(initial=0) < 0 or values.max(initial=0) > 255:
                    raise ValueError(f"{name}: values outside 0..255")
                values = values.astype(np.uint8)
            start = self.offsets[name]
            out[:, start:start + values[0].size] = values.reshape(n, -1)
        return out

    def decode(self, records: list[bytes]) -> dict:
        """Arrays [B, ...] of serialized records (any protobuf field order; ours are sliced)."""
        if records and all(len(r) == self.record_size for r in records):
            rows = np.frombuffer(b"".join(records), np.uint8).reshape(len(records), -1)
            if (rows[:, self._frame] == self.template[self._frame]).all():
                return {name: rows[:, self.offsets[name]:self.offsets[name] + int(np.prod(
                    shape, dtype=np.int64))].reshape((len(records),) + shape)
                    for name, shape in self.shapes.items()}
        decoded = [self.features.deserialize_example_np(r) for r in records]
        return {name: np.stack([np.asarray(d[name], np.uint8) for d in decoded]).reshape(
            (len(records),) + shape) for name, shape in self.shapes.items()}
