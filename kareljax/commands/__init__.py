"""Subcommands of the `kareljax` command line, one module each.

A command module has a one-line docstring (its help), `add_arguments(parser)` and `run(args)`, which
returns an exit status (None means 0). Modules import heavy packages (jax) only inside `run`, so
building the parser stays fast.
"""
