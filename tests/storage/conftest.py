"""A local Cloud Storage emulator (gcp-storage-emulator, in memory) for the gs:// tests."""
from __future__ import annotations

import dataclasses
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import fsspec
import pytest

from kareljax import storage

BUCKET = "kareljax-test"
START_TIMEOUT_S = 30


@dataclasses.dataclass(frozen=True)
class Emulator:
    url: str      # STORAGE_EMULATOR_HOST
    bucket: str   # created empty at start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(process: subprocess.Popen, url: str, log: pathlib.Path) -> None:
    """Polls the emulator's health check until it answers; raises with its output if it exits or
    stays silent for START_TIMEOUT_S."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the Cloud Storage emulator exited ({process.returncode}):\n"
                               f"{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Cloud Storage emulator did not answer at {url} within "
                               f"{START_TIMEOUT_S} s:\n{log.read_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    """An in-memory emulator on a free port with an empty bucket; STORAGE_EMULATOR_HOST points at
    it (inherited by subprocesses) and `storage.configure()` has run, for the whole session.
    The environment and fsspec's configuration are restored afterwards."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # Its output goes to a file: it prints a traceback for every connection a client drops, and
    # a pipe nobody reads would fill up and stop it mid-request.
    log = tmp_path_factory.mktemp("gcs_emulator") / "emulator.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(pathlib.Path(__file__).with_name("emulator.py")), "start",
             "--host", "127.0.0.1",
             "--port", str(port), "--in-memory", "--default-bucket", BUCKET, "--quiet"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    environ, fsspec_gs = dict(os.environ), dict(fsspec.config.conf.get("gs", {}))
    try:
        _wait_until_up(process, url, log)
        os.environ["STORAGE_EMULATOR_HOST"] = url
        storage.configure()
        yield Emulator(url, BUCKET)
    finally:
        process.kill()
        process.wait()
        os.environ.clear()
        os.environ.update(environ)
        fsspec.config.conf["gs"] = fsspec_gs
        storage.configure()


@pytest.fixture
def gcs_client(gcs_emulator):
    """A google-cloud-storage client of the emulator (an independent view of its objects)."""
    from google.cloud import storage as gcs
    return gcs.Client()
