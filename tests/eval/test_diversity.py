"""Distinct programs over specs: the measure of babbling (one program for every spec)."""
import math

import numpy as np

from kareljax.data import tokens
from kareljax.eval import diversity


def test_one_program_for_every_spec_is_one_in_n_and_all_different_is_one():
    one = np.tile(np.array([[1, 5, 6, 2, 0, 0]], np.int32), (50, 1))
    assert diversity.distinct_fraction(one) == 1 / 50
    varied = np.zeros((40, 6), np.int32)
    varied[:, 1], varied[:, 2] = np.arange(40) // 8, np.arange(40) % 8
    assert diversity.distinct_fraction(varied) == 1.0
    assert diversity.distinct_fraction(np.concatenate([one[:10], varied[:10]])) == 11 / 20
    assert math.isnan(diversity.distinct_fraction(np.zeros((0, 4), np.int32)))


def test_distinct_programs_of_a_split_match_their_texts(small_data):
    """On real token rows, counting rows counts programs: the same as counting their texts."""
    from kareljax.data import pipeline
    from kareljax.karel import printer

    programs = pipeline.DatasetReader(small_data, "test").read(np.arange(100))["program"]
    texts = {printer.to_text(tokens.decode_program(row)) for row in programs}
    assert diversity.distinct_fraction(programs) == len(texts) / 100
    assert len(texts) < 100           # short straight-line programs repeat across specs
