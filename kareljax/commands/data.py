"""Build the TFDS `karel` dataset of a config, or export its records: `kareljax data build|export`.

    kareljax data build --config configs/icml.py [--config.data.seed=3 ...]
    kareljax data export --config configs/icml.py --split test --limit 3000 --output test.jsonl

`export` builds the dataset first if it is missing, then writes golden-format JSON lines (code as
curly text, each example's rendered input and output; gzipped when the name ends with .gz).
"""
from __future__ import annotations

import argparse
import sys
import time

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


def _build(data, quiet: bool = False) -> float:
    """Builds the dataset if it is not there yet; returns the seconds it took."""
    from tqdm import tqdm
    from kareljax.data import tfds_karel

    builder = tfds_karel.builder(data)
    if tfds_karel.is_built(builder):
        if not quiet:
            print(f"{builder.data_path} is already built", file=sys.stderr)
        return 0.0
    builder.progress = lambda **kw: tqdm(file=sys.stderr, **kw)
    start = time.perf_counter()
    builder.download_and_prepare()
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    from kareljax.data import dataset_config

    data = _load(args)
    if args.data_command == "export":
        dataset_config.split_size(data, args.split)
    seconds = _build(data, quiet=args.data_command == "export")
    if args.data_command == "build":
        from kareljax.data import tfds_karel
        builder = tfds_karel.builder(data)
        sizes = {s: builder.info.splits[s].num_examples for s in dataset_config.SPLITS}
        print(f"built {builder.data_path} in {seconds:.1f} s: {sizes}")
        return 0
    return _export(data, args)


def _export(data, args) -> int:
    import numpy as np
    from kareljax.data import export, pipeline
    from kareljax.karel import records

    reader = pipeline.DatasetReader(data, args.split)
    count = len(reader) if args.limit is None else min(args.limit, len(reader))
    out = []
    for start in range(0, count, 4096):
        batch = reader.read(np.arange(start, min(count, start + 4096)))
        try:
            out += export.to_golden(batch, data.max_steps)
        except export.ExportMismatchError as e:
            raise export.ExportMismatchError(f"{reader.name} {args.split}: {e}") from e
    records.write_records(args.output, out)
    print(f"wrote {len(out)} records of {reader.name} {args.split} to {args.output}")
    return 0
