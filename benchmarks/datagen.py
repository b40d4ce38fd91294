"""Dataset generation and input-pipeline speed, as one JSON object.

    python benchmarks/datagen.py [--preset icml] [--batch-size 256]

Builds the whole preset (generate programs and worlds, run the JAX interpreter, tokenize, write
array_record) in a child process into a temporary directory, timing it and taking the child's peak
resident memory; then times the grain pipeline (in-memory and file sources) and fresh on-device
batches. `original_programs_per_s` is the original generator measured on the same kind of 2-core
machine (about 150 programs/s, each with its 10 worlds; quoted, not re-run here).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ORIGINAL_PROGRAMS_PER_S = 150

_BUILD = """
import json, sys, time
start = time.perf_counter()
from kareljax import platform
platform.configure()
from kareljax import config_files
from kareljax.data import dataset_config, tfds_karel
data = config_files.load(sys.argv[1], ["data.data_dir=" + sys.argv[2]]).data
programs = sum(dataset_config.split_size(data, s) for s in dataset_config.SPLITS)
tfds_karel.builder(data).download_and_prepare()
print(json.dumps({"programs": programs, "seconds_in_process": time.perf_counter() - start}))
"""


def _pipeline_rate(data, batch_size: int, source: str, batches: int = 100) -> tuple[float, float]:
    from kareljax.data import pipeline

    start = time.perf_counter()
    it = iter(pipeline.batches(data, batch_size=batch_size, seed=0, source=source))
    next(it)
    setup = time.perf_counter() - start
    for _ in range(5):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batch_size * batches / (time.perf_counter() - start), setup


def _fresh_rate(data, batch_size: int, batches: int = 40) -> float:
    import jax
    from kareljax.data import fresh

    make = fresh.fresh_batches(data, batch_size)
    jax.block_until_ready(make(0, 0))
    start = time.perf_counter()
    for step in range(1, batches + 1):
        out = make(0, step)
    jax.block_until_ready(out)
    return batch_size * batches / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="icml")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kareljax_datagen_") as data_dir:
        start = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", _BUILD, args.preset, data_dir],
                               capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if child.returncode:
            raise SystemExit(f"the build failed:\n{child.stderr[-4000:]}")
        built = json.loads(child.stdout.strip().splitlines()[-1])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2 ** 20  # KiB -> GiB
        size = sum(os.path.getsize(os.path.join(root, f))
                   for root, _, files in os.walk(data_dir) for f in files)

        from kareljax import config_files
        data = config_files.load(args.preset, ["data.data_dir=" + data_dir]).data
        memory_rate, memory_setup = _pipeline_rate(data, args.batch_size, "memory")
        files_rate, files_setup = _pipeline_rate(data, args.batch_size, "files")
    fresh_rate = _fresh_rate(data, args.batch_size)
    print(json.dumps({
        "preset": args.preset, "programs": built["programs"],
        "full_icml_seconds" if args.preset == "icml" else "full_preset_seconds": round(seconds, 1),
        "programs_per_s": round(built["programs"] / seconds),
        "original_programs_per_s": ORIGINAL_PROGRAMS_PER_S,
        "speedup_vs_original": round(built["programs"] / seconds / ORIGINAL_PROGRAMS_PER_S),
        "peak_rss_gib": round(peak, 2), "dataset_gib": round(size / 2 ** 30, 3),
        "pipeline_examples_per_s": round(memory_rate),
        "pipeline_setup_s": round(memory_setup, 1),
        "pipeline_files_examples_per_s": round(files_rate),
        "fresh_examples_per_s": round(fresh_rate),
        "batch_size": args.batch_size, "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
