"""What random programs to draw (docs/spec.md §4): statement weights, options, lengths, length schedules.

Statement kinds are the five action ids of `syntax.ACTIONS` (move, turn_left, turn_right,
pick_marker, put_marker), then IF = 5 and IFELSE = 6. Weights are non-negative integers, so every
draw is exact integer arithmetic.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kareljax.karel import syntax

STATEMENTS = syntax.ACTIONS + ("if", "ifelse")
IF, IFELSE = 5, 6
NUM_ACTIONS = len(syntax.ACTIONS)
# move 5, turn_left 3, turn_right 3, pick_marker 2, put_marker 2, if 1, ifelse 1.
BASE_WEIGHTS = (5, 3, 3, 2, 2, 1, 1)
# The action each action forbids under `no_noops` (until a move): its inverse.
INVERSE = {syntax.TURN_LEFT: syntax.TURN_RIGHT, syntax.TURN_RIGHT: syntax.TURN_LEFT,
           syntax.PICK_MARKER: syntax.PUT_MARKER, syntax.PUT_MARKER: syntax.PICK_MARKER}


def _is_int(x: int) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


@dataclasses.dataclass(frozen=True)
class ProgramOptions:
    """The original generator's options; invalid combinations raise ValueError naming the option.

    `base_weights` (7 statement weights, default the paper's) are replaced by all ones under
    `uniform`, then `no_conditionals` zeroes if/ifelse and `no_markers` zeroes pick/put.
    Lengths run from `min_length` to `max_length` inclusive.
    """

    min_length: int = 1
    max_length: int = 10
    uniform: bool = False
    no_conditionals: bool = False
    no_markers: bool = False
    no_noops: bool = False
    base_weights: tuple[int, ...] = BASE_WEIGHTS

    def __post_init__(self):
        for name in ("min_length", "max_length"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) is greater than max_length "
                             f"({self.max_length})")
        weights = tuple(self.base_weights)
        if len(weights) != len(STATEMENTS) or not all(_is_int(w) and w >= 0 for w in weights):
            raise ValueError(f"base_weights must be {len(STATEMENTS)} non-negative integers "
                             f"(for {', '.join(STATEMENTS)}), got {self.base_weights!r}")
        object.__setattr__(self, "base_weights", tuple(int(w) for w in weights))
        w = self.weights
        if not w.any():
            raise ValueError("base_weights: every statement weight is zero under these options")
        if not w[:NUM_ACTIONS].any():
            # Every body, and every program of length 1, needs at least one action.
            raise ValueError("base_weights: no action has a positive weight under these options "
                             f"(only {[STATEMENTS[k] for k in np.flatnonzero(w)]}), so no program "
                             f"of length {self.min_length} exists")

    @property
    def weights(self) -> np.ndarray:
        """Effective int64 [7] weights after `uniform`, `no_conditionals` and `no_markers`."""
        w = np.ones(len(STATEMENTS), np.int64) if self.uniform else np.array(self.base_weights,
                                                                              np.int64)
        if self.no_conditionals:
            w[[IF, IFELSE]] = 0
        if self.no_markers:
            w[[syntax.PICK_MARKER, syntax.PUT_MARKER]] = 0
        return w

    @property
    def lengths(self) -> tuple[int, ...]:
        return tuple(range(self.min_length, self.max_length + 1))

    @property
    def has_conditionals(self) -> bool:
        return bool(self.weights[[IF, IFELSE]].any())


def per_length_counts(n: int, lengths) -> dict[int, int]:
    """Programs of each length in a split of `n`: n // len(lengths) each (the remainder is dropped)."""
    lengths = tuple(int(x) for x in lengths)
    if not lengths:
        raise ValueError("lengths: at least one program length is needed")
    if len(set(lengths)) != len(lengths):
        raise ValueError(f"lengths must be distinct, got {lengths}")
    if not _is_int(n) or n < len(lengths):
        raise ValueError(f"n ({n!r}) is smaller than the number of lengths ({len(lengths)}), "
                         "so some length would get no program")
    return {length: n // len(lengths) for length in lengths}


def length_schedule(rng: np.random.Generator, n: int, options: ProgramOptions) -> np.ndarray:
    """The length of every program of a split, int32 [n // k * k], in a seeded shuffled order."""
    counts = per_length_counts(n, options.lengths)
    lengths = np.repeat(np.array(list(counts), np.int32), list(counts.values()))
    return rng.permutation(lengths)


def as_generator(seed_or_rng) -> np.random.Generator:
    """A numpy Generator: an int seed is expanded with `np.random.default_rng`; a Generator is used."""
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    if _is_int(seed_or_rng) or isinstance(seed_or_rng, np.random.SeedSequence):
        return np.random.default_rng(seed_or_rng)
    raise TypeError(f"expected an int seed or a numpy Generator, got {type(seed_or_rng).__name__}")
