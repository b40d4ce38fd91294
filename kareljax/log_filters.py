"""Silencing single library log messages that only clutter kareljax's output."""
from __future__ import annotations

import contextlib
import logging
import sys
import warnings


class DropMessages(logging.Filter):
    """A logger filter that drops the records whose message starts with `prefix`."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


@contextlib.contextmanager
def dropped(logger: str, prefix: str):
    """Within the block, `logger` drops the records whose message starts with `prefix`."""
    target, quiet = logging.getLogger(logger), DropMessages(prefix)
    target.addFilter(quiet)
    try:
        yield
    finally:
        target.removeFilter(quiet)


# Orbax's coroutine that reads one array; the reads a failed restore abandons end in it.
_ORBAX_READ = "_read_array_index_and_device_put"


class _DropAbandonedReads(logging.Filter):
    """Drops asyncio's "Task/Future exception was never retrieved" for orbax's array reads."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith(("Task exception was never retrieved",
                                        "Future exception was never retrieved"))
                    and ("async_deserialize" in message or "OCDBT database" in message))


def _is_abandoned_read(unraisable) -> bool:
    closed_loop = (isinstance(unraisable.exc_value, RuntimeError)
                   and str(unraisable.exc_value) == "Event loop is closed")
    return closed_loop or getattr(unraisable.object, "__name__", None) == _ORBAX_READ


_quieted = False


def quiet_abandoned_checkpoint_reads() -> None:
    """Silences the late errors of a failed orbax restore's other reads (idempotent).

    When one array of a checkpoint does not read back, orbax closes its event loop while the reads
    of the other arrays are still in flight. They end later, in other threads or when collected,
    as "Event loop is closed", as exceptions ignored in orbax's read coroutine (each printing a
    whole TensorStore spec), as never-retrieved tasks or never-awaited coroutines: thousands of
    lines around kareljax's own one-line report of the failed read. Called before any restore
    (some arrive before the failure is reported); only these messages are dropped, anything else
    still reaches the previous hooks.
    """
    global _quieted
    if _quieted:
        return
    _quieted = True
    logging.getLogger("asyncio").addFilter(_DropAbandonedReads())
    for coroutine in (_ORBAX_READ, "Store._get_array_metadatas"):
        warnings.filterwarnings("ignore", f"coroutine '{coroutine}' was never awaited",
                                RuntimeWarning)
    previous = sys.unraisablehook

    def hook(unraisable):
        if not _is_abandoned_read(unraisable):
            previous(unraisable)

    sys.unraisablehook = hook
