"""The `kareljax` command line: builds the parser and hands each subcommand to its module in
`kareljax.commands`."""
from kareljax import platform

platform.configure()  # before anything imports jax

import argparse  # noqa: E402
import importlib  # noqa: E402
import sys  # noqa: E402

from kareljax import __version__  # noqa: E402

# Module names in kareljax.commands, in the order `kareljax --help` lists them.
COMMANDS = ("reproduce", "data", "train", "eval", "collect", "scan", "report", "plan", "karel",
            "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kareljax", description="Emergent program semantics in language models, in JAX.")
    parser.add_argument("--version", action="version", version=f"kareljax {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"kareljax.commands.{name}")
        summary = " ".join(module.__doc__.strip().split("\n\n")[0].split())  # first paragraph
        command = commands.add_parser(name, help=summary, description=module.__doc__)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    """Runs the command line `argv` (default: sys.argv[1:]); returns the exit status.

    `--config.PATH=VALUE` arguments are taken out first and handed to the command as
    `args.config_overrides` (commands with a `--config` option apply them).
    """
    from kareljax.config_files import ConfigError, split_overrides
    from kareljax.errors import KareljaxError

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        argv, overrides = split_overrides(argv)
    except ConfigError as e:
        print(f"kareljax: {e}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    if overrides and not hasattr(args, "config"):
        print(f"kareljax {args.command}: takes no --config overrides", file=sys.stderr)
        return 2
    args.config_overrides = overrides
    try:
        return args.run(args) or 0
    except KareljaxError as e:   # bad input or a damaged file: what and how to repair, no traceback
        print(f"kareljax {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # What a command finishes it keeps (checkpoints, collected steps, scanned steps, built
        # splits), so the same command continues; no traceback for a Ctrl-C.
        print(f"\nkareljax {args.command}: interrupted; what was finished is kept, and the same "
              "command continues from there", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
