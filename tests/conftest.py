"""Shared fixtures: the golden vectors of the original implementation (tests/golden), and hypothesis
settings."""
from __future__ import annotations

import functools
import gzip
import json
import pathlib

import pytest
from hypothesis import HealthCheck, settings

from kareljax import platform

# As the command line does: on a host without TPU or GPU, JAX starts its CPU backend only (the
# `aot` extra's compiler plugins would otherwise try to start and log their failure).
platform.cpu_only_without_accelerator()

REPO = pathlib.Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO / "tests" / "golden"   # see tests/golden/README.md
GOLDEN_FILES = ("straight", "conditionals", "loops", "while")

# Kernel compilation makes the first example of a test slow: no per-example deadline.
settings.register_profile(
    "kareljax", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kareljax")


@functools.lru_cache(maxsize=None)
def load_golden(name: str) -> tuple[dict, ...]:
    """All records of `tests/golden/<name>.jsonl.gz` (part of the repository: a missing file is an
    error, never a skip)."""
    with gzip.open(GOLDEN_DIR / f"{name}.jsonl.gz", "rt") as f:
        return tuple(json.loads(line) for line in f)


@pytest.fixture(scope="session")
def golden():
    """A loader: golden(name) -> tuple of records of tests/golden/<name>.jsonl.gz."""
    return load_golden
