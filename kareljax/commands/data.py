"""Build the TFDS `karel` dataset of a config, or export its records: `kareljax data build|export`.

    kareljax data build --config configs/icml.py [--config.data.seed=3 ...]
    kareljax data export --config configs/icml.py --split test --limit 3000 --output test.jsonl

`export` builds the dataset first if it is missing, then writes golden-format JSON lines (code as
curly text, each example's rendered input and output; gzipped when the name ends with .gz).
"""
from __future__ import annotations

import argparse
import sys

from kareljax.commands import int_at_least


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="generate and write every split of the dataset",
                               description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    export = actions.add_parser("export", help="write a split's records as golden JSON lines",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for p in (build, export):
        p.add_argument("--config", required=True,
                       help="a config file (configs/icml.py) or a preset name (icml); override "
                            "values with --config.data.NAME=VALUE")
        p.add_argument("--data-dir", default=None,
                       help="where datasets live (default: the config's data.data_dir)")
    export.add_argument("--split", required=True, help="train, val or test")
    export.add_argument("--limit", type=int_at_least(1), default=None,
                        help="the first N records of the split (default: all)")
    export.add_argument("--output", required=True, help="the .jsonl or .jsonl.gz file to write")


def _load(args):
    from kareljax import config_files
    from kareljax.data import dataset_config

    config = config_files.load(args.config, args.config_overrides)
    if "data" not in config:
        raise config_files.ConfigError(f"--config: {args.config} has no data section")
    if args.data_dir:
        config.data.data_dir = args.data_dir
    dataset_config.validate(config.data)
    return config.data


def run(args: argparse.Namespace) -> int:
    from kareljax.data import build

    data = _load(args)
    if args.data_command == "export":
        count = build.export_split(data, args.split, args.output, args.limit)
        print(f"wrote {count} records of the {args.split} split to {args.output}")
        return 0
    seconds = build.build(data)
    path, sizes = build.split_sizes(data)
    if not seconds:
        print(f"{path} is already built", file=sys.stderr)
    print(f"built {path} in {seconds:.1f} s: {sizes}")
    return 0
