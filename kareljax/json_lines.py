"""Strict reading of JSON-lines files: one JSON object per non-blank line, or an error that names
the file and the line (`path:N: why`)."""
from __future__ import annotations

import json
from typing import Iterable


def read_objects(lines: Iterable[str], name: str, error: type[Exception] = ValueError,
                 required: tuple[str, ...] = (), repair: str = "") -> list[dict]:
    """The objects of `lines` (an open file; blank lines skipped). Raises `error` naming `name`
    and the line for a line that is not JSON, not an object, or lacks a key of `required` (that
    message ends with `repair`, when given: why the keys can be missing and what writes them)."""
    objects = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise error(f"{name}:{number}: not JSON ({e})") from None
        if not isinstance(obj, dict):
            raise error(f"{name}:{number}: not a JSON object")
        if missing := [k for k in required if k not in obj]:
            raise error(f"{name}:{number}: missing keys {missing}"
                        + (f"; {repair}" if repair else ""))
        objects.append(obj)
    return objects
