"""Results per reference length: the eval summary's and the report's table, from per-spec arrays."""
import json

import numpy as np
import pytest

from kareljax.eval import length_table


def test_rates_and_lengths_per_reference_length_in_strict_json():
    results = {"reference_length": np.array([1, 1, 2, 2, 2]),
               "correct": np.array([True, False, False, False, False]),
               "correct_gen": np.array([True, False, False, False, False]),
               "generated_length": np.array([1, 3, 2, 4, 6])}
    table = length_table.by_reference_length(results)
    assert table[1] == {"programs": 2, "correct": 0.5, "correct_gen": 0.5,
                        "generated_length": 2.0, "generated_length_correct": 1.0}
    assert table[2]["programs"] == 3 and table[2]["generated_length"] == pytest.approx(4.0)
    assert table[2]["generated_length_correct"] is None      # no correct program of length 2
    assert "exact" not in table[1]                            # only the arrays given
    json.dumps(table, allow_nan=False)                        # the eval summary stays valid JSON
