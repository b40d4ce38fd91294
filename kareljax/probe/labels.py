"""Alignment of hidden states with trace states, and the probe label tasks (docs/spec.md §8).

A *sample* is (spec i, program token j) where token j starts an action statement s that example
`example`'s run executed (at trace entry e(s), the state after it). For offset o the label is the
state at trace entry e(s) + o: o = 0 the state the model is about to create, +1/+2 further ahead,
-1 the state after the last action it has read (the initial state for the first action), -2 one
further back. For straight-line programs e(s) = s + 1, and this is docs/spec.md §8's "state after action k
paired with the hidden state producing action k - o".

The branch task (datasets with conditionals) has samples of its own: the tokens that start an
if/ifelse/while statement which the example's run evaluated under every semantics row, labelled
with the value of that statement's first evaluation (1: the condition held, the body or the
then-branch ran). It has no offsets; its rows carry offset 0 (the hidden state producing the
statement's first token, before the condition is read).

Two further tasks ([D beyond], not in the default scan) read the state in the robot's own frame at
the start of the run: `turns`, its facing relative to the starting facing (quarter turns to the
left, 0..3), and `ego_start_position`, its displacement from the start as (steps forward, steps to
the left) of the starting pose. They depend on the semantics like every state task (an
alternative semantics re-maps which actions turn; a `move()` into a wall moves nothing), but not on
the starting pose itself, which the model reads from the prompt's grids.

Two more ([D beyond], on request) read that starting pose itself, the same label at every program
token, offset and semantics: `initial_facing` (0..3) and `initial_position` (interior row, column).
A grid-frame state is the starting pose composed with the starting-frame state, so these tell
whether a model's program tokens carry the half of it that only the prompt holds.

Labels come from one shown example's run (`example`, 0 by default) or, with `example` =
ALL_EXAMPLES (-1), from each shown example's run in turn (docs/spec.md §8's option): every program token
then gives one sample per shown example, with the same hidden state and that example's labels;
each sample records its example.

By default every offset and every semantics uses the same sample set (the samples whose entries are
valid for all of them); `sample_sets` reports it. Labels are int32 [M, heads] per task; a task with
several heads counts a sample correct only when every head is right.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kareljax.data import tokens as T
from kareljax.karel.world import DELTAS

OFFSETS = (-2, -1, 0, 1, 2)
ALL_EXAMPLES = -1   # `example` value: labels from every shown example's run


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    heads: tuple[int, ...]   # classes of each head


def tasks(height: int, width: int) -> tuple[Task, ...]:
    """The state label tasks for an interior of height x width: docs/spec.md §8's six, the two in the
    starting frame (relative positions in -s..s, s = max(height, width): 13 classes for the 6x6
    interior), then the two of the starting pose."""
    span = 2 * max(height, width) + 1
    return (Task("facing", (4,)), Task("start_position", (span, span)),
            Task("end_position", (span, span)), Task("front_wall", (2,)),
            Task("position", (height, width)), Task("walls", (2, 2, 2, 2)),
            Task("turns", (4,)), Task("ego_start_position", (span, span)),
            Task("initial_facing", (4,)), Task("initial_position", (height, width)))


BRANCH = Task("branch", (2,))
PAPER_TASK_NAMES = ("facing", "start_position", "end_position", "front_wall", "position", "walls",
                    BRANCH.name)
EGO_TASK_NAMES = ("turns", "ego_start_position")
INITIAL_POSE_TASK_NAMES = ("initial_facing", "initial_position")
EXTRA_TASK_NAMES = EGO_TASK_NAMES + INITIAL_POSE_TASK_NAMES   # beyond docs/spec.md §8, on request
TASK_NAMES = PAPER_TASK_NAMES + EXTRA_TASK_NAMES
_CONDITIONAL_STARTS = (T.IF, T.IFELSE, T.WHILE)


def shown_examples(collected: dict) -> int:
    """How many shown examples' traces the collection holds."""
    return int(collected["num_actions"].shape[1])


def _examples(collected: dict, example: int) -> range:
    """The examples `example` stands for (every shown one for ALL_EXAMPLES); a name error for
    one the collection does not hold."""
    count = shown_examples(collected)
    if example == ALL_EXAMPLES:
        return range(count)
    if not 0 <= example < count:
        raise ValueError(f"example: {example} is not a shown example of this collection "
                         f"(0..{count - 1}, or {ALL_EXAMPLES} for all of them)")
    return range(example, example + 1)


# The axis of a sample dict's arrays that runs over samples: 0, except `entry` [O, M, S].
_SAMPLE_AXIS = {"entry": 1, "entries": 2}


def _concat(parts: list[dict]) -> dict:
    """Sample dicts (`aligned`, `branch_samples`) joined sample-wise."""
    return {k: np.concatenate([p[k] for p in parts], axis=_SAMPLE_AXIS.get(k, 0))
            for k in parts[0]}


def take(samples: dict, keep: np.ndarray) -> dict:
    """The samples `keep` (indices) of a sample dict, every array along its sample axis."""
    return {k: np.take(v, keep, axis=_SAMPLE_AXIS.get(k, 0)) for k, v in samples.items()}


def _in_statements(collected: dict, statements: tuple[int, ...]) -> np.ndarray | bool:
    """[N, P] mask of the tokens of statements first..stop-1 (True for every token when
    `statements` is empty)."""
    if not statements:
        return True
    first, stop = statements
    return (collected["statement"] >= first) & (collected["statement"] < stop)


def branch_samples(collected: dict, example: int = 0, correct_only: bool = False,
                   statements: tuple[int, ...] = ()) -> dict:
    """The branch task's samples: {"spec", "token", "example" [M], "label" int32 [M, S, 1]}
    (empty without conditional traces, e.g. for straight-line programs); `example` and
    `statements` as in `aligned`."""
    if "cond_stmt" not in collected:
        empty = np.zeros(0, np.int64)
        return {"spec": empty, "token": empty, "example": empty,
                "label": np.zeros((0, 0, 1), np.int32)}
    return _concat([_branch_samples_of(collected, e, correct_only, statements)
                    for e in _examples(collected, example)])


def _branch_samples_of(collected: dict, example: int, correct_only: bool,
                       statements: tuple[int, ...]) -> dict:
    stmt = collected["cond_stmt"][:, example]                      # [N, S, Kc]
    valid = collected["cond_valid"][:, example]
    value = collected["cond_value"][:, example]
    statement = collected["statement"]                             # [N, P]
    num_sem = stmt.shape[1]
    is_cond = np.isin(collected["program"], _CONDITIONAL_STARTS) & (statement >= 0)
    first = np.zeros(statement.shape + (num_sem,), np.int64)       # [N, P, S]
    seen = np.zeros(statement.shape + (num_sem,), bool)
    for s in range(num_sem):  # [N, P, Kc] per semantics row bounds the memory
        match = (stmt[:, None, s] == statement[:, :, None]) & valid[:, None, s]
        seen[..., s], first[..., s] = match.any(-1), match.argmax(-1)
    keep = is_cond & seen.all(-1)
    if correct_only:
        keep &= collected["correct"][:, None]
    keep &= _in_statements(collected, statements)
    spec, token = np.nonzero(keep)
    sem = np.arange(num_sem)[None]
    label = value[spec[:, None], sem, first[spec, token]].astype(np.int32)
    return {"spec": spec, "token": token, "example": np.full(len(spec), example),
            "label": label[..., None]}


def _entries(collected: dict, example: int) -> tuple[np.ndarray, np.ndarray]:
    """(entry [N, P, S] of each token's statement in each semantics' trace (-1 if not executed),
    number of actions [N, S])."""
    stmt = collected["trace_stmt"][:, example]            # [N, S, K]
    valid = collected["trace_valid"][:, example]
    statement = collected["statement"]                    # [N, P]
    match = (stmt[:, None, :, 1:] == statement[:, :, None, None]) & valid[:, None, :, 1:]
    match &= (statement >= 0)[:, :, None, None]
    entry = np.where(match.any(-1), match.argmax(-1) + 1, -1)
    return entry.astype(np.int32), collected["num_actions"][:, example].astype(np.int32)


def aligned(collected: dict, offsets=OFFSETS, example: int = 0, common: bool = True,
            correct_only: bool = False, statements: tuple[int, ...] = ()) -> dict:
    """The sample set and trace entries: {"spec", "token", "example" [M],
    "entry" [len(offsets), M, S]}.

    `example`: the shown example whose run gives the labels, or ALL_EXAMPLES for each in turn
    (the samples of example 0, then of example 1, ...). With `common`, samples are those valid
    for every offset and semantics row; otherwise pass one offset at a time. `statements` =
    (first, stop) keeps the tokens of the program's statements first..stop-1 (pre-order index;
    for straight-line programs, the actions), e.g. (0, 1) the first action only; () keeps every
    statement.
    """
    return _concat([_aligned_of(collected, offsets, e, common, correct_only, statements)
                    for e in _examples(collected, example)])


def _valid_entries(collected: dict, offsets, example: int, common: bool, correct_only: bool,
                   statements: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(keep [N, P]: the tokens with a sample in `example`'s run, trace entries [O, N, P, S])."""
    entry, count = _entries(collected, example)
    offs = np.asarray(offsets)[:, None, None, None]
    shifted = entry[None] + offs                                           # [O, N, P, S]
    ok = (entry[None] >= 0) & (shifted >= 0) & (shifted <= count[None, :, None, :])
    keep = ok.all(axis=(0, 3)) if common else ok.all(axis=3)[0]
    if correct_only:
        keep &= collected["correct"][:, None]
    return keep & _in_statements(collected, statements), shifted


def _aligned_of(collected: dict, offsets, example: int, common: bool, correct_only: bool,
                statements: tuple[int, ...]) -> dict:
    keep, shifted = _valid_entries(collected, offsets, example, common, correct_only, statements)
    spec, token = np.nonzero(keep)
    return {"spec": spec, "token": token, "example": np.full(len(spec), example),
            "entry": shifted[:, spec, token]}


def aligned_every_example(collected: dict, offsets=OFFSETS, correct_only: bool = False,
                          statements: tuple[int, ...] = ()) -> dict:
    """The original's labels from all shown examples (`--all_labels`, docs/spec.md §8): one
    sample per token with a sample in every shown example's run, and each example's entries:
    {"spec", "token" [M], "entries" [E, O, M, S]} (`labels_every_example` reads them)."""
    parts = [_valid_entries(collected, offsets, e, True, correct_only, statements)
             for e in range(shown_examples(collected))]
    keep = np.logical_and.reduce([k for k, _ in parts])
    spec, token = np.nonzero(keep)
    return {"spec": spec, "token": token,
            "entries": np.stack([shifted[:, spec, token] for _, shifted in parts])}


def labels_every_example(collected: dict, samples: dict, height: int, width: int) -> dict:
    """{task: int32 [O, M, S, E * heads]}: `labels` of each shown example in turn, side by
    side, for one probe output per example."""
    per_example = [labels(collected, {"spec": samples["spec"], "entry": entries,
                                      "example": np.full(len(samples["spec"]), e)}, height, width)
                   for e, entries in enumerate(samples["entries"])]
    return {task: np.concatenate([y[task] for y in per_example], -1) for task in per_example[0]}


def labels(collected: dict, samples: dict, height: int, width: int) -> dict:
    """{task name: int32 [O, M, S, heads]} for the samples' entries (offsets x samples x
    semantics), each from its sample's example."""
    spec, entry = samples["spec"], samples["entry"]                        # entry [O, M, S]
    num_sem = entry.shape[-1]
    sem = np.arange(num_sem)[None, None]
    sp, ex = spec[None, :, None], samples["example"][None, :, None]

    def at(field, e):
        return collected[f"trace_{field}"][sp, ex, sem, e].astype(np.int32)

    row, col, facing = at("row", entry), at("col", entry), at("facing", entry)
    zeros = np.zeros_like(entry)
    row0, col0, facing0 = at("row", zeros), at("col", zeros), at("facing", zeros)
    last = collected["num_actions"][sp, ex, sem].astype(np.int32)
    last = np.broadcast_to(last, entry.shape)
    row_end, col_end = at("row", last), at("col", last)
    shown = collected["inputs"][:, :shown_examples(collected)]
    walls = np.pad(shown == 0, ((0, 0), (0, 0), (1, 1), (1, 1)),
                   constant_values=True)                                # [N, E, H, W] with border
    span = max(height, width)

    def wall_at(dr, dc):
        return walls[sp, ex, row + dr, col + dc].astype(np.int32)

    front = DELTAS[facing]
    ahead, left = DELTAS[facing0], DELTAS[(facing0 - 1) % 4]   # the starting frame
    moved = np.stack([row - row0, col - col0], -1)
    sides = [wall_at(*DELTAS[d]) for d in range(4)]                        # N, E, S, W
    out = {"facing": facing[..., None],
           "start_position": np.stack([col - col0 + span, row - row0 + span], -1),
           "end_position": np.stack([col - col_end + span, row - row_end + span], -1),
           "front_wall": walls[sp, ex, row + front[..., 0], col + front[..., 1]][..., None]
           .astype(np.int32),
           "position": np.stack([row - 1, col - 1], -1),
           "walls": np.stack(sides, -1),
           "turns": ((facing0 - facing) % 4)[..., None],
           "ego_start_position": np.stack([(moved * ahead).sum(-1) + span,
                                           (moved * left).sum(-1) + span], -1),
           "initial_facing": facing0[..., None],
           "initial_position": np.stack([row0 - 1, col0 - 1], -1)}
    return out


def sample_sets(samples: dict, offsets=OFFSETS) -> dict:
    """What was probed, for the results: sample count, specs, offsets."""
    return {"samples": int(len(samples["spec"])), "specs": int(len(np.unique(samples["spec"]))),
            "offsets": [int(o) for o in offsets]}
