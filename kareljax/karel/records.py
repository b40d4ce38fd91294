"""Program records in the golden files' JSON-lines format, and running them with either interpreter.

A record is `{"code": <program text>, "examples": [{"input": <rendered world>, ...}, ...]}`. Running
it adds `output` (rendered), `output_exact` and `status` ("ok" or "timeout") to every example. A
record whose program or worlds are malformed gets an `error` message instead and is otherwise left
alone; it never stops the other records.
"""
from __future__ import annotations

import gzip
import json
import sys
from collections import defaultdict

import numpy as np

from kareljax import json_lines
from kareljax.errors import KareljaxError
from kareljax.karel import parser, reference, syntax
from kareljax.karel import world as world_lib

ENGINES = ("jax", "reference")
OUTPUT_KEYS = ("output", "output_exact", "status")


class RecordFormatError(ValueError):
    """A record without the fields a run needs, or whose worlds differ in size."""


class RecordFileError(KareljaxError, ValueError):
    """A records file line that is not a JSON object."""


def _open(path, mode: str):
    path = str(path)
    return gzip.open(path, mode + "t", encoding="utf-8") if path.endswith(".gz") else open(
        path, mode, encoding="utf-8")


def read_records(path) -> list[dict]:
    """Reads one JSON object per non-blank line (gzipped if the name ends with .gz)."""
    with _open(path, "r") as f:
        return json_lines.read_objects(f, str(path), RecordFileError)


def write_records(path, records) -> None:
    """Writes one JSON object per line (gzipped if the name ends with .gz)."""
    with _open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


def read_world(text) -> world_lib.World:
    """Parses a rendered world and checks it is runnable: at least 3x3, its border all walls."""
    if not isinstance(text, str):
        raise world_lib.WorldFormatError(f"a world must be text, not {type(text).__name__}")
    world = world_lib.from_text(text)
    walls = world.walls
    border = np.concatenate([walls[0], walls[-1], walls[:, 0], walls[:, -1]])
    if min(walls.shape) < 3 or not border.all():
        raise world_lib.WorldFormatError(
            f"a world needs a border of walls around an interior; got a {walls.shape[0]}x"
            f"{walls.shape[1]} grid{'' if min(walls.shape) < 3 else ' with gaps in its border'}")
    return world


def _prepare(record: dict) -> tuple[syntax.Program, list[world_lib.World]]:
    """The record's program and input worlds, or an exception saying what is malformed."""
    code, examples = record.get("code"), record.get("examples")
    if not isinstance(code, str):
        raise RecordFormatError("the record needs 'code', the program text")
    if not isinstance(examples, list) or not all(isinstance(e, dict) for e in examples):
        raise RecordFormatError("the record needs 'examples', a list of objects")
    program = parser.parse(code)
    worlds = []
    for i, example in enumerate(examples):
        if "input" not in example:
            raise RecordFormatError(f"example {i} has no 'input'")
        try:
            worlds.append(read_world(example["input"]))
        except world_lib.WorldFormatError as e:
            raise world_lib.WorldFormatError(f"example {i}: {e}") from None
    if len({w.shape for w in worlds}) > 1:
        raise RecordFormatError(f"the examples' worlds differ in size: {[w.shape for w in worlds]}")
    return program, worlds


def _without_outputs(record: dict) -> dict:
    """A copy of the record with no results of an earlier run (error, outputs, statuses)."""
    out = {k: v for k, v in record.items() if k != "error"}
    if isinstance(out.get("examples"), list):
        out["examples"] = [{k: v for k, v in e.items() if k not in OUTPUT_KEYS}
                           if isinstance(e, dict) else e for e in out["examples"]]
    return out


def run_records(records: list[dict], engine: str = "jax",
                max_steps: int = reference.DEFAULT_MAX_STEPS, *,
                progress: bool = False) -> list[dict]:
    """Runs every record's program on its examples' inputs; returns new records with the outputs.

    `progress` shows a tqdm bar on stderr (reference engine only; the JAX engine runs in batches).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    out = [_without_outputs(r) for r in records]
    jobs, job_records = [], []
    for record in out:
        try:
            jobs.append(_prepare(record))
            job_records.append(record)
        except (parser.KarelSyntaxError, world_lib.WorldFormatError, RecordFormatError) as e:
            record["error"] = str(e)
    if engine == "jax":
        finals = _run_jax(jobs, max_steps)
    else:
        finals = _run_reference(jobs, max_steps, progress)
    for record, results in zip(job_records, finals):
        for example, (final, timeout) in zip(record["examples"], results):
            example["output"] = world_lib.to_text(final)
            example["output_exact"] = world_lib.to_exact(final)
            example["status"] = reference.TIMEOUT if timeout else reference.OK
    return out


def _run_reference(jobs, max_steps: int, progress: bool):
    """Per job, [(final world, timed out)] from the reference interpreter, one example at a time."""
    from tqdm import tqdm

    finals = []
    for program, worlds in tqdm(jobs, desc="reference", unit="prog", file=sys.stderr,
                                disable=not progress):
        runs = [reference.run(program, w, max_steps=max_steps) for w in worlds]
        finals.append([(r.world, r.status == reference.TIMEOUT) for r in runs])
    return finals


def padded_size(n: int) -> int:
    """A size >= n from a small set (powers of two, then multiples of 1024): few compilations."""
    return max(8, 1 << (n - 1).bit_length()) if n <= 1024 else -(-n // 1024) * 1024


def _run_jax(jobs, max_steps: int):
    """Per job, [(final world, timed out)] from the JAX interpreter: one call per group of jobs
    with the same number of examples and world size, padded to `padded_size` programs."""
    from kareljax.karel import bytecode, interpreter

    groups = defaultdict(list)
    for j, (_, worlds) in enumerate(jobs):
        if worlds:
            groups[len(worlds), worlds[0].shape].append(j)
    finals = [[] for _ in jobs]
    for members in groups.values():
        padded = members + [members[0]] * (padded_size(len(members)) - len(members))
        programs = [jobs[j][0] for j in padded]
        code = bytecode.compile_batch(programs)
        length = padded_size(code.length)  # also a fixed set of code lengths
        if length != code.length:
            code = bytecode.compile_batch(programs, length)
        stacked = {j: world_lib.stack(jobs[j][1]) for j in members}
        result = interpreter.execute(code, world_lib.stack([stacked[j] for j in padded]),
                                     max_steps=max_steps)
        row, col, facing, markers, timeout = (
            np.asarray(x)[:len(members), :, 0]
            for x in (result.row, result.col, result.facing, result.markers, result.timeout))
        for k, j in enumerate(members):
            finals[j] = [(world_lib.World(w.walls, markers[k, e], row[k, e], col[k, e],
                                          facing[k, e]), bool(timeout[k, e]))
                         for e, w in enumerate(jobs[j][1])]
    return finals


def summary(records: list[dict]) -> dict:
    """Counts of records, examples, record errors and timed-out examples."""
    examples = [e for r in records if "error" not in r for e in r["examples"]]
    return {"records": len(records), "examples": len(examples),
            "errors": sum("error" in r for r in records),
            "timeouts": sum(e["status"] == reference.TIMEOUT for e in examples)}
