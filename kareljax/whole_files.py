"""Files written whole or not at all: readers (a resumed command, another process) see the old
file or the new one, never a part."""
from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def write_whole(path: str | os.PathLike, **open_kwargs):
    """Opens `path`.tmp for writing text; once the block ends without error, renames it to `path`
    (atomic on one filesystem); after an error the .tmp file is removed and `path` is unchanged."""
    path = os.fspath(path)
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", **open_kwargs) as f:
            yield f
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    os.replace(tmp, path)
