"""Subcommands of the `kareljax` command line, one module each.

A command module has a one-line docstring (its help), `add_arguments(parser)` and `run(args)`, which
returns an exit status (None means 0). Modules import heavy packages (jax) only inside `run`, so
building the parser stays fast.
"""

import argparse


def int_at_least(minimum: int):
    """An argparse `type` that accepts integers >= `minimum` and names the bound otherwise."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse
