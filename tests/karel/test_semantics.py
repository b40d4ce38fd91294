"""The alternative-semantics tables against docs/spec.md §3 (transcribed here independently)."""
from __future__ import annotations

import numpy as np
import pytest

from kareljax.karel.semantics import ALT_MAPS, ORIGINAL, semantics_table
from kareljax.karel.syntax import ACTIONS

# docs/spec.md §3: for tokens P, U, R, L, M, what each now executes.
SPEC_ROWS = ["U P L R M", "L M P U R", "U R L M P", "R L M R L", "R M U P L", "U P M R L",
             "U P M R L", "U P L R M", "U P R M L", "U P M L R", "U P M R L", "U P L M R"]
LETTER = {"M": "move", "L": "turn_left", "R": "turn_right", "P": "pick_marker", "U": "put_marker"}


@pytest.mark.parametrize("index, row", list(enumerate(SPEC_ROWS)))
def test_alt_maps_follow_the_spec_table(index, row):
    for token, executed in zip("PURLM", row.split()):
        assert ACTIONS[ALT_MAPS[index][ACTIONS.index(LETTER[token])]] == LETTER[executed]


def test_semantics_table_rows():
    np.testing.assert_array_equal(ORIGINAL, np.arange(5))
    assert semantics_table().shape == (1, 5)
    table = semantics_table((8, 11))
    assert table.dtype == np.int32
    np.testing.assert_array_equal(table, np.stack([ORIGINAL, ALT_MAPS[8], ALT_MAPS[11]]))
    with pytest.raises(ValueError):
        semantics_table((12,))
    with pytest.raises(ValueError):
        semantics_table((-1,))
