"""How varied a model's programs are: while it babbles, one constant program answers every spec.
NumPy only, so that the report can use it without importing JAX."""
from __future__ import annotations

import math

import numpy as np


def distinct_fraction(program_ids) -> float:
    """Distinct programs over programs, for program ids [N, P] padded alike after `}`: 1/N when one
    program answers every spec, 1.0 when no two specs get the same one (NaN for N = 0)."""
    ids = np.asarray(program_ids)
    return len(np.unique(ids, axis=0)) / len(ids) if len(ids) else math.nan
