"""Dataset records in the golden files' JSON-lines format (`tests/golden/README.md`).

Each record: `code` (curly text), `length`, and `examples` with rendered `input` and `output` (8
lines of 8 characters for the default world), `output_exact` and `status`. Outputs are computed
again by the JAX interpreter and must match the stored (rendered) outputs, so an export also checks
the dataset.
"""
from __future__ import annotations

import numpy as np

from kareljax.data import generate, tokens
from kareljax.errors import KareljaxError
from kareljax.karel import printer, records as golden_records, world

_GLYPHS = np.array(list(tokens.CELL_GLYPHS))


class ExportMismatchError(KareljaxError, RuntimeError):
    """A stored output differs from the interpreter's: the dataset is corrupt or stale."""


def render_glyphs(cells) -> str:
    """World text (border added) of glyph indices [h, w]."""
    rows = ["".join(_GLYPHS[np.asarray(row)]) for row in cells]
    edge = "#" * (len(rows[0]) + 2)
    return "\n".join([edge] + [f"#{r}#" for r in rows] + [edge])


def to_golden(batch: dict, max_steps: int) -> list[dict]:
    """Golden-format records of stored records {program, length, inputs, outputs} [N, ...]."""
    out = []
    for i in range(len(batch["length"])):
        program = tokens.decode_program(batch["program"][i])
        inputs = generate.worlds_from_glyphs(batch["inputs"][i])
        out.append({"code": printer.to_text(program), "length": int(batch["length"][i]),
                    "examples": [{"input": world.to_text(w)} for w in world.unstack(inputs)]})
    ran = golden_records.run_records(out, "jax", max_steps)
    for i, record in enumerate(ran):
        if "error" in record:
            raise ExportMismatchError(f"record {i}: {record['error']}")
        for e, example in enumerate(record["examples"]):
            stored = render_glyphs(batch["outputs"][i, e])
            if example["output"] != stored:
                raise ExportMismatchError(
                    f"record {i}, example {e}: the stored output\n{stored}\ndiffers from the "
                    f"interpreter's\n{example['output']}")
    return ran
