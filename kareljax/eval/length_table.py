"""Generation results per reference program length, from per-spec arrays. NumPy only, so that the
report can use it without importing JAX."""
from __future__ import annotations

import numpy as np

RATES = ("correct", "correct_gen", "exact")


def by_reference_length(results: dict) -> dict[int, dict]:
    """{length: {programs, the rates of RATES and generated_length present in `results` (means),
    generated_length_correct (None without a correct program, as JSON can hold)}} from per-spec
    arrays with `reference_length` and `correct`."""
    lengths = np.asarray(results["reference_length"])
    correct = np.asarray(results["correct"], bool)
    table = {}
    for n in np.unique(lengths):
        at = lengths == n
        row = {"programs": int(at.sum())}
        row |= {k: float(np.mean(results[k][at])) for k in (*RATES, "generated_length")
                if k in results}
        if "generated_length" in results:
            right = at & correct
            row["generated_length_correct"] = (float(np.mean(results["generated_length"][right]))
                                               if right.any() else None)
        table[int(n)] = row
    return table
