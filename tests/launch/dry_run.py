"""Runs a launch script with --dry-run and parses what it prints: one `+ command` per command,
each quoted for a POSIX shell, so `shlex` gives back the exact argv the script would run."""
from __future__ import annotations

import dataclasses
import os
import pathlib
import shlex
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"


@dataclasses.dataclass
class DryRun:
    returncode: int
    commands: list[list[str]]  # argv of every printed command, in order
    stderr: str                # the script's notes (# ...) and errors

    def find(self, *prefix: str) -> list[list[str]]:
        """The commands whose argv starts with `prefix`."""
        return [c for c in self.commands if c[:len(prefix)] == list(prefix)]

    def one(self, *prefix: str) -> list[str]:
        found = self.find(*prefix)
        assert len(found) == 1, f"expected one {' '.join(prefix)!r} command, got {found}"
        return found[0]


def dry_run(script: str, *args: str, env: dict | None = None) -> DryRun:
    """`launch/<script> ARGS` (or `<script> ARGS` for a path with a folder, from the repository
    root) with --dry-run put before any `--`; `env` adds environment variables."""
    args = list(args)
    cut = args.index("--") if "--" in args else len(args)
    path = REPO / script if "/" in script else LAUNCH / script
    argv = ["bash", str(path), *args[:cut], "--dry-run", *args[cut:]]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO,
                            env={**os.environ, **(env or {})})
    commands: list[list[str]] = []
    for word in shlex.split(result.stdout):
        if word == "+":            # an unquoted + only starts a printed command
            commands.append([])
        else:
            assert commands, f"output before the first '+': {result.stdout[:200]!r}"
            commands[-1].append(word)
    return DryRun(result.returncode, commands, result.stderr)


def option(argv: list[str], name: str) -> str:
    """The value of `--name=VALUE` in argv."""
    values = [a.split("=", 1)[1] for a in argv if a.startswith(name + "=")]
    assert len(values) == 1, f"{name}= appears {len(values)} times in {argv}"
    return values[0]


def bash_syntax_error(script: str) -> str:
    """'' when bash parses `script` (bash -n), else bash's message."""
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True,
                            timeout=30)
    return result.stderr if result.returncode else ""


def requirements_pin(package: str) -> str:
    """The version requirements.txt pins `package` to."""
    for line in (REPO / "requirements.txt").read_text().splitlines():
        spec = line.split("#")[0].strip()
        if spec.startswith(package + "=="):
            return spec.split("==")[1]
    raise AssertionError(f"{package} is not pinned in requirements.txt")
