"""Silencing single library log messages that only clutter kareljax's output."""
from __future__ import annotations

import logging


class DropMessages(logging.Filter):
    """A logger filter that drops the records whose message starts with `prefix`."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)
