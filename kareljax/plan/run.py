"""`run(config, target_names)`: every stage of a run compiled for every target, with the setting
that makes a stage fit where it does not, and the whole run's time per target.

A stage that does not fit (or whose batch does not split over the target's devices) is compiled
again with the settings a user would try, in order, and the first that fits is named:
- train_step: a batch that the devices divide, then `train.grad_accum` x2, x4, x8, then
  `train.mesh.fsdp` over every device with those;
- decode, collect: half the batch, again and again (`--batch-size` of eval and collect);
- scan, scan_paper: half the scan's memory budget (`--config.probe.scan.memory_gib`), again
  and again.
Programs that are the same on two targets (a one-device stage on the same chip) compile once;
compiles run on every core of this host.
"""
from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import os
from typing import Callable, Iterator

import ml_collections

from kareljax import config_files
from kareljax.config_files import ConfigError
from kareljax.plan import compile as compile_lib
from kareljax.plan import stages as stages_lib
from kareljax.plan import targets as targets_lib
from kareljax.probe import options as options_lib

MFU = 0.4   # the utilisation assumed for the run's times (roofline / MFU)


@dataclasses.dataclass(frozen=True)
class Attempt:
    setting: str                                   # "" for the config as given
    build: Callable[[], stages_lib.Stage]


def _with(config: ml_collections.ConfigDict, *items: str) -> ml_collections.ConfigDict:
    changed = copy.deepcopy(config)
    for item in items:
        config_files.apply_override(changed, item)
    return changed


def _train_attempts(config, devices, hosts) -> Iterator[Attempt]:
    tc = config.train
    yield Attempt("", lambda: stages_lib.train_stage(config, devices, hosts))
    n = len(devices)
    batch = tc.batch_size
    unit = n * tc.grad_accum
    if batch % unit:   # the nearest batches the devices divide, the smaller first
        for b in sorted({max(unit, batch // unit * unit), -(-batch // unit) * unit},
                        key=lambda b: (abs(b - batch), b)):
            item = f"train.batch_size={b}"
            yield Attempt(f"--config.{item}",
                          lambda item=item: stages_lib.train_stage(_with(config, item), devices,
                                                                   hosts))
        return
    for fsdp in ([1, n] if n > 1 and tc.mesh.fsdp == 1 else [tc.mesh.fsdp]):
        for factor in (1, 2, 4, 8):
            accum = tc.grad_accum * factor
            if (fsdp, factor) == (tc.mesh.fsdp, 1) or batch % accum or (batch // accum) % n:
                continue
            items = [f"train.grad_accum={accum}"] if factor > 1 else []
            if fsdp != tc.mesh.fsdp:
                items += [f"train.mesh.fsdp={fsdp}", "train.mesh.data=1"]
            yield Attempt(" ".join(f"--config.{i}" for i in items),
                          lambda items=items: stages_lib.train_stage(_with(config, *items),
                                                                     devices, hosts))


def _batch_attempts(config, device, stage, batch) -> Iterator[Attempt]:
    build = stages_lib.decode_stage if stage == "decode" else stages_lib.collect_stage
    yield Attempt("", lambda: build(config, device, batch))
    smaller = batch // 2
    while smaller >= 1:
        yield Attempt(f"--batch-size {smaller}", lambda b=smaller: build(config, device, b))
        smaller //= 2


def _scan_attempts(config, device, stage) -> Iterator[Attempt]:
    options = options_lib.config_scan_options(config, "paper" if stage == "scan_paper" else None)
    yield Attempt("", lambda: stages_lib.scan_stage(config, device, options, stage))
    budget = options.memory_gib / 2
    while budget >= 1 / 16:
        smaller = dataclasses.replace(options, memory_gib=budget)
        yield Attempt(f"--config.probe.scan.memory_gib={budget:g}",
                      lambda o=smaller: stages_lib.scan_stage(config, device, o, stage))
        budget /= 2


def attempts(config, target: targets_lib.Target, devices: list, stage: str,
             batch: int) -> Iterator[Attempt]:
    """The settings to try for `stage` on `target`, the config's own first."""
    if stage == "train_step":
        return _train_attempts(config, devices, target.hosts)
    if stage in ("decode", "collect"):
        return _batch_attempts(config, devices[0], stage, batch)
    return _scan_attempts(config, devices[0], stage)


class _Compiler:
    """Compiles on a thread pool, each distinct program once (same chip and stage key)."""

    def __init__(self, workers: int):
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
        self.done: dict[tuple, concurrent.futures.Future] = {}

    def submit(self, stage: stages_lib.Stage, target: targets_lib.Target):
        where = (target.platform, target.chip.kind) if stage.devices == 1 else target.name
        key = (where, stage.key)
        if key not in self.done:
            self.done[key] = self.pool.submit(compile_lib.compile_stage, stage, target)
        return self.done[key]


def _first_fit(tried: Iterator[Attempt], target, compiler, built=None) -> dict:
    """The row of the config's own setting (`built`: its stage, if built already), with
    `setting` naming the first one that fits."""
    first = None
    for attempt in tried:
        try:
            stage = built if built is not None and first is None else attempt.build()
        except ConfigError as e:     # e.g. a batch the devices do not divide
            if first is None:
                first = {"target": target.name, "fits": False, "compiled": False,
                         "error": str(e), "device_memory_bytes": target.chip.memory_bytes,
                         "peak_bytes_per_device": None, "seconds_roofline": None}
            continue
        row = compile_lib.analyse(stage, target, *compiler.submit(stage, target).result())
        if first is None:
            first = row
        if row["fits"]:
            if attempt.setting:
                first["setting"] = attempt.setting
                first["setting_row"] = row
            return first
        if not row.get("compiled") and not row.get("out_of_memory"):
            return first     # a compile error that a smaller setting will not cure
    first["setting"] = None
    return first


def run(config: ml_collections.ConfigDict, target_names: list[str], *,
        stages: tuple[str, ...] = stages_lib.STAGES, batch: int = stages_lib.DEFAULT_BATCH,
        workers: int | None = None, progress: Callable[[str], None] | None = None) -> list[dict]:
    """One row per (target, stage); see `kareljax plan`."""
    targets = [targets_lib.resolve(name) for name in target_names]
    compiler = _Compiler(workers or len(os.sched_getaffinity(0)))
    pending = []
    for target in targets:
        devices = target.build_devices()
        for stage in stages:
            # Start every config's own compile now (the pool overlaps them); the search for a
            # fitting setting, if needed, runs when the rows are collected.
            built = None
            try:
                built = next(attempts(config, target, devices, stage, batch)).build()
                compiler.submit(built, target)
            except ConfigError:
                pass
            pending.append((target, devices, stage, built))
    rows = []
    for target, devices, stage, built in pending:
        row = _first_fit(attempts(config, target, devices, stage, batch), target, compiler,
                         built)
        row.setdefault("stage", stage)
        rows.append(row)
        if progress:
            progress(f"{target.name} {stage}: " + ("fits" if row["fits"] else "does not fit"))
    compiler.pool.shutdown()
    return rows


def totals(config: ml_collections.ConfigDict, rows: list[dict], mfu: float = MFU) -> list[dict]:
    """Per target: hours of training, of evaluation + collection (decode and forward passes),
    and of the scan at the config's settings and at the paper's, at `mfu` of the roofline, and
    the device-hours of training + collection + scan (every device of the target held).
    Decoding, collection and the scan are compiled for one device and spread over all of the
    target's (rows split over them, probes sharded over them): their hours divide by its device
    count."""
    out = []
    for name in dict.fromkeys(r["target"] for r in rows):
        mine = {r["stage"]: r.get("setting_row") or r for r in rows if r["target"] == name}
        target = targets_lib.resolve(name)

        def hours(*stage_names):
            picked = [mine.get(s) for s in stage_names]
            if any(r is None or r.get("seconds_roofline") is None for r in picked):
                return None
            spread = lambda r: target.devices if r["devices"] == 1 else 1  # noqa: E731
            return sum(r["seconds_roofline"] * r["calls"] / spread(r)
                       for r in picked) / mfu / 3600

        parts = {"train_hours": hours("train_step"), "collect_hours": hours("decode", "collect"),
                 "scan_hours": hours("scan"), "scan_paper_hours": hours("scan_paper")}
        run_hours = [parts[k] for k in ("train_hours", "collect_hours", "scan_hours")]
        total = None if any(h is None for h in run_hours) else sum(run_hours)
        out.append({"target": name, "mfu": mfu, **parts, "total_hours": total,
                    "device_hours": None if total is None else total * target.devices})
    return out
