"""Run files on local disk or on Cloud Storage (`gs://bucket/path`): one path layer for both.

Paths are `etils.epath` paths, as orbax's own: gs:// goes through fsspec's gcsfs, and orbax writes
checkpoint arrays through tensorstore's GCS driver. Nothing is mounted.

`configure()` (called by every function here before a gs:// access) sets, once per process:
  * gcsfs without listing caches: another process (a trainer writing checkpoints, a scan waiting
    for them) or tensorstore may add objects at any time, and a cached listing would hide them;
  * when `STORAGE_EMULATOR_HOST` is set (e.g. `http://localhost:9023`, a local Cloud Storage
    emulator): every gs:// access goes there. gcsfs and google-cloud-storage (which orbax uses to
    delete old checkpoints) read that variable themselves; tensorstore is pointed there by
    `TENSORSTORE_GCS_HTTP_URL` and given a dummy token (`GOOGLE_AUTH_TOKEN_FOR_TESTING`) so it
    looks for no credentials; gcsfs is made anonymous and kept off its gRPC bucket-type probe
    (gcsfs 2026.10 sends it to the emulator's HTTP port and waits 60 s for it, again and again).
The variables are set in `os.environ`, so subprocesses inherit them. Configure before the first
gs:// access of the process: tensorstore reads its variables once, and etils keeps the first
gcsfs instance.

Cloud Storage has no appends and no directories: `write_whole` uploads a file when it is complete
(an object appears whole or not at all), a folder is a name prefix, `makedirs` is a no-op there
and `move` of a folder copies each object, then deletes them.
"""
from __future__ import annotations

import builtins
import contextlib
import io
import os
from typing import IO, Iterator

import fsspec
from etils import epath

PathLike = str | os.PathLike
_configured: str | None = None   # the STORAGE_EMULATOR_HOST configured for ("" for none)


def configure() -> None:
    """Sets up gcsfs (and, with `STORAGE_EMULATOR_HOST`, every gs:// client) as the module
    docstring says; idempotent, redone only when `STORAGE_EMULATOR_HOST` changes."""
    global _configured
    host = os.environ.get("STORAGE_EMULATOR_HOST", "")
    if host == _configured:
        return
    gs = fsspec.config.conf.setdefault("gs", {})   # gcsfs's instances take these as defaults
    gs["use_listings_cache"] = False
    if host:
        if "://" not in host:   # tensorstore and google-cloud-storage need the scheme
            host = os.environ["STORAGE_EMULATOR_HOST"] = f"http://{host}"
        os.environ["TENSORSTORE_GCS_HTTP_URL"] = host
        os.environ.setdefault("GOOGLE_AUTH_TOKEN_FOR_TESTING", "emulator")
        os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"   # read when gcsfs is imported
        import gcsfs.core
        for protocol in ("gs", "gcs"):   # the same, should gcsfs have been imported before
            fsspec.register_implementation(protocol, gcsfs.core.GCSFileSystem, clobber=True)
        gs["token"] = "anon"
    _configured = host


def is_remote(p: PathLike) -> bool:
    """Whether `p` is a gs:// path."""
    return os.fspath(p).startswith("gs://")


def path(p: PathLike) -> epath.Path:
    """`p` as an epath.Path: gs:// as given, a local path made absolute."""
    if is_remote(p):
        configure()
        return epath.Path(os.fspath(p))
    return epath.Path(os.path.abspath(os.fspath(p)))


def exists(p: PathLike) -> bool:
    return path(p).exists()


def is_dir(p: PathLike) -> bool:
    """Whether `p` is a folder (on gs://: whether any object's name starts with `p/`)."""
    return path(p).is_dir()


def open(p: PathLike, mode: str = "r", **kwargs) -> IO:  # noqa: A001 (the module's open)
    """Opens a file for reading (or writing, but see `write_whole`; gs:// has no appends); a local
    file with Python's own `open` (every keyword of it)."""
    if not is_remote(p):
        return builtins.open(path(p), mode, **kwargs)
    return path(p).open(mode, **kwargs)


def read_text(p: PathLike) -> str:
    return path(p).read_text()


def read_bytes(p: PathLike) -> bytes:
    return path(p).read_bytes()


@contextlib.contextmanager
def write_whole(p: PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """A file to write (mode "w" or "wb") that replaces `p` whole once the block ends without
    error; after an error `p` is unchanged. Readers see the old file or the new one: locally it is
    written to `p.tmp` and renamed; on gs:// it is kept in memory and uploaded at the end (an object
    appears whole once its upload completes)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"write_whole writes with mode 'w' or 'wb', not {mode!r}")
    target = path(p)
    if is_remote(target):
        buffer = io.StringIO(newline=open_kwargs.get("newline")) if mode == "w" else io.BytesIO()
        yield buffer
        with target.open(mode) as f:
            f.write(buffer.getvalue())
        return
    tmp = target.with_name(target.name + ".tmp")
    try:
        with builtins.open(tmp, mode, **open_kwargs) as f:
            yield f
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def write_text(p: PathLike, text: str) -> None:
    """Replaces `p` with `text`, whole (see `write_whole`)."""
    with write_whole(p, "w") as f:
        f.write(text)


def write_bytes(p: PathLike, data: bytes) -> None:
    """Replaces `p` with `data`, whole (see `write_whole`)."""
    with write_whole(p, "wb") as f:
        f.write(data)


def makedirs(p: PathLike) -> None:
    """Creates folder `p` and its parents (nothing to do on gs://)."""
    path(p).mkdir(parents=True, exist_ok=True)


def listdir(p: PathLike) -> list[str]:
    """The names in folder `p`, sorted."""
    return sorted(child.name for child in path(p).iterdir())


def glob(p: PathLike, pattern: str) -> list[epath.Path]:
    """The paths in folder `p` matching `pattern` (`*`, `?`, `[...]`; not `**`), sorted."""
    return sorted(path(p).glob(pattern), key=os.fspath)


def remove(p: PathLike, *, missing_ok: bool = False) -> None:
    """Deletes file `p`."""
    path(p).unlink(missing_ok=missing_ok)


def rmtree(p: PathLike, *, missing_ok: bool = False) -> None:
    """Deletes folder `p` and everything in it."""
    target = path(p)
    if missing_ok and not target.exists():
        return
    target.rmtree()


def move(src: PathLike, dst: PathLike) -> None:
    """Moves file or folder `src` to `dst` on the same storage, replacing whatever `dst` was and
    creating its parent folders (atomic locally; on gs:// each object is copied, then all are
    deleted)."""
    source, target = path(src), path(dst)
    if is_remote(source) != is_remote(target):
        raise ValueError(f"cannot move {source} to {target}: not on the same storage")
    if target.is_dir():
        target.rmtree()
    if is_remote(source):
        # Copies, then deletes: gcsfs's mv first tries the moveTo API, which the emulator lacks (its
        # 501 is retried for half a minute); epath's rename also wants `dst`'s parent to exist.
        fs, _ = fsspec.core.url_to_fs(os.fspath(source))
        fs.copy(os.fspath(source), os.fspath(target), recursive=True)
        fs.rm(os.fspath(source), recursive=True)
    else:
        makedirs(target.parent)
        os.replace(source, target)


def mtime(p: PathLike) -> float:
    """When file `p` was last written, in seconds since the epoch (sub-second where the storage
    keeps it: epath's own `stat` rounds down to whole seconds)."""
    target = path(p)
    if not is_remote(target):
        return os.path.getmtime(target)
    fs, name = fsspec.core.url_to_fs(os.fspath(target))
    return fs.modified(name).timestamp()
