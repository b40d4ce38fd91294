"""Ctrl-C during training, taken at a step boundary.

A KeyboardInterrupt raised wherever the main thread happens to be can land inside orbax's
asynchronous save, after the main thread has started it and before it has signalled the
background thread that finishes it; that thread then waits forever and holds the process at exit
(seen: `kareljax train` hanging after Ctrl-C, about one stop in twelve, when the signal met a
rolling save). So while the loop runs, the first SIGINT only asks it to stop: the loop stops at
the next step boundary, saves that step, waits for the write and then raises KeyboardInterrupt.
A second Ctrl-C raises at once. In a multi-process run every process must stop at the same step,
so the processes agree on a request at checkpoint steps only (one small all-gather there).
"""
from __future__ import annotations

import contextlib
import signal
import threading

import numpy as np


class StopRequest:
    """Whether a Ctrl-C asked the run to stop."""

    def __init__(self):
        self.requested = False

    def handle(self, signum, frame) -> None:
        if self.requested:            # the second Ctrl-C: stop now, wherever the run is
            raise KeyboardInterrupt
        self.requested = True


@contextlib.contextmanager
def deferred_sigint():
    """Within: SIGINT sets the yielded StopRequest instead of raising (main thread only; where
    SIGINT is ignored or this is another thread, nothing changes)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        yield request
        return
    signal.signal(signal.SIGINT, request.handle)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)


def should_stop(request: StopRequest, at_checkpoint_step: bool, multi_process: bool) -> bool:
    """Whether the run stops after this step: at once in one process; in several, at a checkpoint
    step where any of them was asked (every process calls this at the same steps)."""
    if not multi_process:
        return request.requested
    if not at_checkpoint_step:
        return False
    from jax.experimental import multihost_utils
    asked = multihost_utils.process_allgather(np.int32(request.requested))
    return bool(np.any(asked))
