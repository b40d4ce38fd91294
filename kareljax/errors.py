"""The one base class of the errors a user can act on.

Bad input (a config value, a file that is missing or does not read back, a run directory
that is not one) raises a `KareljaxError` whose message says what is wrong and, where there is
one, what repairs it (`hint`). `kareljax.cli.main` catches it once: one line on stderr,
"kareljax <command>: <message>", and exit status 2. Anything else is a bug and keeps its
traceback.
"""
from __future__ import annotations


class KareljaxError(Exception):
    """A problem with the user's input or files; str() is the message and its hint."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message}; {self.hint}" if self.hint else message
