"""A short interpreter demo: a few programs run by both engines under alternative semantics.

Parses example programs, runs each on random worlds under the original semantics and the ICML
alternative ones with the JAX and the reference interpreter, checks that they agree, prints for each
program a world (one where the hero moves) before and after, and times both engines.
"""
from __future__ import annotations

import argparse

from kareljax.commands import int_at_least

PROGRAMS = (
    "def run() { move(); turn_left(); put_marker(); move() }",
    "def run() { repeat(3) { put_marker(); move() }; turn_right() }",
    "def run() { while(front_is_clear()) { move() }; turn_left(); move() }",
    "def run() { ifelse(markers_present()) { pick_marker() } else { put_marker(); put_marker() };"
    " move() }",
)



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="seed of the random worlds")
    parser.add_argument("--worlds", type=int_at_least(1), default=128,
                        help="random worlds per program for the timing (default 128)")


def _side_by_side(titles: list[str], worlds: list[str], gap: int = 3) -> str:
    width = max(len(t) for t in titles + [worlds[0].split("\n")[0]]) + gap
    lines = ["".join(t.ljust(width) for t in titles)]
    for row in zip(*(w.split("\n") for w in worlds)):
        lines.append("".join(r.ljust(width) for r in row))
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    import time

    import jax
    import numpy as np

    from kareljax.data.worlds import random_worlds
    from kareljax.karel import bytecode, interpreter, parser, reference, semantics
    from kareljax.karel import world as world_lib

    alts = semantics.ICML_ALTS
    remaps = semantics.semantics_table(alts)
    names = ["original"] + [f"alt {a}" for a in alts]
    programs = [parser.parse(text) for text in PROGRAMS]
    worlds = jax.tree.map(np.asarray, random_worlds(jax.random.key(args.seed),
                                                    (len(programs), args.worlds)))
    code = bytecode.compile_batch(programs)

    start = time.perf_counter()
    result = jax.block_until_ready(interpreter.execute(code, worlds, remaps))
    first = time.perf_counter() - start
    start = time.perf_counter()
    result = jax.block_until_ready(interpreter.execute(code, worlds, remaps))
    again = time.perf_counter() - start
    row, col, facing, markers, timeout = (np.asarray(x) for x in (
        result.row, result.col, result.facing, result.markers, result.timeout))

    start = time.perf_counter()
    runs = [[[reference.run(program, jax.tree.map(lambda x: x[p, e], worlds), remap=remap)
              for remap in remaps] for e in range(args.worlds)]
            for p, program in enumerate(programs)]
    ref_seconds = time.perf_counter() - start
    disagree = sum(
        (r.world.row, r.world.col, r.world.facing, r.status == reference.TIMEOUT)
        != (row[p, e, s], col[p, e, s], facing[p, e, s], timeout[p, e, s])
        or not np.array_equal(r.world.markers, markers[p, e, s])
        for p, per_program in enumerate(runs) for e, per_world in enumerate(per_program)
        for s, r in enumerate(per_world))

    for p, text in enumerate(PROGRAMS):
        moved = (row[p, :, 0] != worlds.row[p]) | (col[p, :, 0] != worlds.col[p])
        e = int(np.argmax(moved))  # the first world where the hero moves (else the first)
        world = jax.tree.map(lambda x: x[p, e], worlds)
        after = [world_lib.World(world.walls, markers[p, e, s], row[p, e, s], col[p, e, s],
                                 facing[p, e, s]) for s in range(len(remaps))]
        print(f"program {p + 1}: {text}")
        print(_side_by_side(["before"] + names,
                            [world_lib.to_text(w) for w in [world] + after]))
        print()
    total = len(programs) * args.worlds * len(remaps)
    verdict = f"ENGINES DISAGREE on {disagree} runs" if disagree else "engines agree on every run"
    print(f"{len(programs)} programs x {args.worlds} worlds x {len(remaps)} semantics = {total} "
          f"runs; jax {first:.2f} s first call (compiling), {again * 1e3:.1f} ms compiled, on "
          f"{len(jax.local_devices())} {jax.default_backend()} device(s); reference "
          f"{ref_seconds:.2f} s; {verdict}")
    return 1 if disagree else 0
