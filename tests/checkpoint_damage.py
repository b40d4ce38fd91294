"""Damaging a saved checkpoint the way a full disk or an interrupted copy does."""
from __future__ import annotations

import pathlib


def truncate_arrays(step_dir: pathlib.Path) -> None:
    """Cuts every array file (OCDBT) of checkpoint `step_dir` to half its size."""
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and "ocdbt" in str(p)]
    assert files, f"no array files under {step_dir}"
    for p in files:
        p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2])
