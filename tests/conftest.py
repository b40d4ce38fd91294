"""Shared fixtures: the golden vectors of the original implementation, and hypothesis settings."""
from __future__ import annotations

import functools
import gzip
import json
import pathlib

import pytest
from hypothesis import HealthCheck, settings

REPO = pathlib.Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO.parent / "shared" / "golden"
GOLDEN_FILES = ("straight", "conditionals", "loops", "while")

# Kernel compilation makes the first example of a test slow: no per-example deadline.
settings.register_profile(
    "kareljax", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kareljax")


@functools.lru_cache(maxsize=None)
def load_golden(name: str) -> tuple[dict, ...]:
    """All records of `<name>.jsonl.gz`; skips the calling test if the golden folder is absent."""
    path = GOLDEN_DIR / f"{name}.jsonl.gz"
    if not GOLDEN_DIR.is_dir():
        pytest.skip(f"golden vectors not found: expected the folder {GOLDEN_DIR} "
                    "(<repo>/../shared/golden)")
    with gzip.open(path, "rt") as f:
        return tuple(json.loads(line) for line in f)


@pytest.fixture(scope="session")
def golden():
    """A loader: golden(name) -> tuple of records (skips when the golden folder is absent)."""
    return load_golden
