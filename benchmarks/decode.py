"""Decoding speed: specs decoded (grammar-constrained greedy, on device), executed and scored per
second, with the KV cache and by full recomputation, as JSON lines.

    python benchmarks/decode.py [--preset icml] [--specs 10000] [--batch-size 256]

The specs are the preset's test split, generated in memory (the same records a built dataset
holds). Models are freshly initialised (speed does not depend on the weights, but the programs'
length does: an untrained model writes the longest programs the grammar allows, the worst case).
`cache_speedup` compares the two decoders on the same batches in the same run (recomputation is
timed on fewer specs and scaled). The issue's target: the whole 10,000-spec test split with the
tiny model in <= 60 s on this CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np
from flax import nnx

from kareljax import config_files
from kareljax.data import dataset_config, generate
from kareljax.eval import accuracy, evaluate
from kareljax.model import sizes


def _records(preset: str, count: int) -> tuple[object, dict]:
    data = config_files.load(preset).data
    parts, total = [], 0
    for chunk in generate.generate_split(data, "test"):
        parts.append(chunk)
        total += len(chunk["length"])
        if total >= count:
            break
    return data, {k: np.concatenate([p[k] for p in parts])[:count] for k in parts[0]}


def _decode_all(model, data, records, batch_size, recompute: bool):
    return evaluate.decode_records(model, data, records, batch_size, recompute=recompute)


def _bench(model_name: str, data, records, batch_size: int, recompute_specs: int) -> dict:
    model = sizes.build_model(sizes.SIZES[model_name], rngs=nnx.Rngs(0))
    n = len(records["length"])
    warm = {k: v[:batch_size] for k, v in records.items()}
    _decode_all(model, data, warm, batch_size, False)          # compile
    start = time.perf_counter()
    programs = _decode_all(model, data, records, batch_size, False)
    decoded = time.perf_counter() - start
    start = time.perf_counter()
    results = accuracy.score(programs, records, data.n_shown, data.max_steps)
    scored = time.perf_counter() - start
    sub = {k: v[:recompute_specs] for k, v in records.items()}
    _decode_all(model, data, {k: v[:batch_size] for k, v in sub.items()}, batch_size, True)
    start = time.perf_counter()
    _decode_all(model, data, sub, batch_size, True)
    recomputed = (time.perf_counter() - start) * n / recompute_specs
    _decode_all(model, data, sub, batch_size, False)
    start = time.perf_counter()
    _decode_all(model, data, sub, batch_size, False)
    cached_same = (time.perf_counter() - start) * n / recompute_specs
    return {"config": model_name, "specs": n, "batch_size": batch_size,
            "prompt_tokens": dataset_config.layout(data).prompt_length,
            "mean_program_tokens": float((programs != 0).sum(1).mean()),
            "programs_per_s": round(n / (decoded + scored), 1),
            "decode_s": round(decoded, 2), "score_s": round(scored, 2),
            "total_s": round(decoded + scored, 2),
            "recompute_programs_per_s": round(n / recomputed, 1),
            "cache_speedup": round(recomputed / cached_same, 2),
            "correct": float(results["correct"].mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="icml")
    parser.add_argument("--specs", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--configs", default="tiny,small")
    parser.add_argument("--recompute-specs", type=int, default=512)
    args = parser.parse_args()
    data, records = _records(args.preset, args.specs)
    for name in args.configs.split(","):
        row = _bench(name, data, records, args.batch_size, args.recompute_specs)
        print(json.dumps({"preset": args.preset, **row, "device": jax.devices()[0].platform,
                          "cpu_count": os.cpu_count()}), flush=True)


if __name__ == "__main__":
    main()
