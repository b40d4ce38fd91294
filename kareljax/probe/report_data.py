"""The report's inputs: reading a run's probe results, metrics and collections, and the
constants (paper numbers, phases) the report compares them with."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re

import numpy as np

from kareljax import json_lines, storage
from kareljax.errors import KareljaxError
from kareljax.eval import diversity, length_table
from kareljax.probe import store


RESULTS_FILE = "results.jsonl"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
COLLECT_DIR = "collect"
REPORT_DIR = "report"

# The keys the report reads. Every row `kareljax scan` writes has them (kareljax/probe/scan.py:
# the state tasks' rows and the branch task's, on the mean over layers and per layer); a row
# without one is from an earlier kareljax, and `read_results` names the scan that writes it again.
SPLITS = ("train", "val", "test")
REQUIRED_KEYS = ("step", "semantics", "offset", "depth", "task", "seed", "test_acc",
                 "majority_acc", "train_acc_rise",
                 *(f"{split}_{count}" for count in ("samples", "available") for split in SPLITS))
GENERATION_KEYS = ("correct", "correct_gen", "generated_length", "reference_length")
DEPTH_ORDER = ("linear", "mlp1", "mlp2")
DEPTH_LABELS = {"linear": "linear", "mlp1": "1-layer MLP", "mlp2": "2-layer MLP"}
OFFSET_LABELS = {-2: "previous (-2)", -1: "current (-1)", 0: "next (0)", 1: "next-next (+1)",
                 2: "next-next-next (+2)"}
CURRENT = -1
TABLE1_OFFSETS = (-1, 0, 1)
PAPER_TABLE1 = {"linear": 0.632, "mlp1": 0.791, "mlp2": 0.823}   # current state, ICML 2024
PAPER_R2 = 0.878
PAPER_GENERATIVE = 0.924
# The paper's three phases, as fractions of training (docs/spec.md §9).
PHASES = (("babbling", 0.0, 0.5), ("syntax acquisition", 0.5, 0.75),
          ("semantics acquisition", 0.75, 1.0))
PHASE_COLORS = ("#dddddd", "#fde9c9", "#d5ecd4")


class ReportInputError(KareljaxError):
    """A required input is missing or unreadable; the message names the file."""


# --------------------------------------------------------------------------------------------
# Reading

@dataclasses.dataclass
class RunData:
    workdir: str
    results: list[dict]                  # probe rows on the layer-averaged states
    layer_results: list[dict]            # probe rows with a "layer" key
    generation: dict[int, dict]          # step -> {correct, correct_gen, *_length(_correct), specs,
                                         #          distinct, by_length}
    train_loss: list[tuple[int, float]]  # (step, loss) from metrics.jsonl
    val_evals: list[dict]                # metrics.jsonl lines with val_correct
    total_steps: int | None              # config.train.num_steps
    notes: list[str]                     # what was missing and what was skipped
    floors: dict | None = None           # {noop_floor, best_constant, reference_distinct}
                                         # of `kareljax eval`
    forced_steps: frozenset = frozenset()  # steps collected on the reference programs (forced)
    order: str = "synthesis"             # config.data.order: "execution" = the E2 control, whose
                                         # accuracy is of its output grids, its programs the input


def read_results(path: str) -> list[dict]:
    """The probe rows of a results.jsonl; `ReportInputError` naming `path` if it is missing, empty,
    or a line is not a JSON object with the `REQUIRED_KEYS` (a row written by an earlier kareljax:
    the message names the scan that writes the results again)."""
    scan = f"kareljax scan --workdir {os.path.dirname(path) or '.'}"
    if not storage.exists(path):
        raise ReportInputError(f"{path} does not exist: train the probes first ({scan})")
    with storage.open(path) as f:
        rows = json_lines.read_objects(
            f, path, ReportInputError, REQUIRED_KEYS,
            repair=f"results from an earlier kareljax (every row of a current scan has them): "
                   f"run `{scan}` again")
    if not rows:
        raise ReportInputError(f"{path} has no probe rows")
    return rows


def read_metrics(path: str) -> tuple[list[tuple[int, float]], list[dict], int] | None:
    """(training (step, loss) pairs, evaluation lines, unreadable lines) or None if `path` is
    missing. Event lines are ignored; unreadable lines (a run still writing) are counted."""
    if not storage.exists(path):
        return None
    loss, evals, bad = [], [], 0
    with storage.open(path) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if not isinstance(row, dict) or "event" in row or "step" not in row:
                continue
            if "loss" in row:
                loss.append((int(row["step"]), float(row["loss"])))
            if "val_correct" in row:
                evals.append(row)
    return loss, evals, bad


def read_total_steps(path: str) -> int | None:
    """config.train.num_steps of a run's config.json, or None if the file or key is missing."""
    if not storage.exists(path):
        return None
    try:
        steps = json.loads(storage.read_text(path))["train"]["num_steps"]
        return int(steps)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def read_order(path: str) -> str:
    """config.data.order of a run's config.json ("synthesis" when absent: runs before it)."""
    try:
        return str(json.loads(storage.read_text(path))["data"].get("order", "synthesis"))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return "synthesis"


def read_generation(workdir: str, notes: list[str] | None = None) -> dict[int, dict]:
    """Generation accuracy of each collected checkpoint's test split: step -> {correct,
    correct_gen, generated_length, reference_length (means), specs, distinct (distinct programs
    over specs; NaN for collections without programs), by_length (`length_table`)}. Reads only
    those arrays and the programs of each shard (not the hidden states). Unreadable checkpoints
    are skipped with a note."""
    notes = [] if notes is None else notes
    root = os.path.join(workdir, COLLECT_DIR)
    if not storage.is_dir(root):
        notes.append(f"{root} does not exist: no generation accuracy per checkpoint")
        return {}
    out = {}
    for dir_step, directory in store.step_dirs(workdir).items():
        index_path = os.path.join(directory, store.INDEX)
        if not storage.exists(index_path):
            notes.append(f"{index_path} does not exist (collection incomplete): step skipped")
            continue
        try:
            index = store.read_index(directory)
            shards = index["splits"]["test"]["shards"]
        except store.CollectionReadError as e:
            notes.append(f"{e}: step skipped")
            continue
        except (KeyError, TypeError):
            notes.append(f"{index_path} lists no test shards: step skipped")
            continue
        if index.get("forced"):
            notes.append(f"{directory}: collected with forced decoding of the reference programs "
                         "(probe baseline): no generation accuracy for this step")
            continue
        parts = {k: [] for k in (*GENERATION_KEYS, "program")}
        try:
            for shard in shards:
                with (storage.open(os.path.join(directory, shard), "rb") as f,
                      np.load(f) as data):
                    for k in parts:
                        if k in data.files:
                            parts[k].append(np.asarray(data[k]))
        except store.READ_ERRORS as e:
            notes.append(f"{directory}: cannot read a test shard ({type(e).__name__}: {e}): "
                         "step skipped")
            continue
        if not parts["correct"]:
            notes.append(f"{directory}: test shards hold no `correct` array: step skipped")
            continue
        step = int(index.get("step", dir_step))
        summary = {"specs": int(sum(len(p) for p in parts["correct"]))}
        arrays = {k: np.concatenate(v) for k, v in parts.items() if v}
        for k in GENERATION_KEYS:
            summary[k] = float(arrays[k].mean()) if k in arrays else math.nan
        summary["distinct"] = (diversity.distinct_fraction(arrays["program"])
                               if "program" in arrays else math.nan)
        correct = arrays["correct"].astype(bool)
        summary["generated_length_correct"] = (
            float(arrays["generated_length"][correct].mean())
            if "generated_length" in arrays and correct.any() else math.nan)
        summary["by_length"] = (length_table.by_reference_length(arrays)
                                if "reference_length" in arrays else {})
        out[step] = summary
    if not out:
        notes.append(f"no readable test collections under {root}: no generation accuracy")
    return out


def eval_summaries(workdir: str, split: str = "test") -> dict[int, str]:
    """step -> path of each summary `kareljax eval` wrote for `split`
    (<workdir>/eval/step_<S>_<split>.json)."""
    directory = os.path.join(workdir, "eval")
    found = {}
    if storage.is_dir(directory):
        for name in storage.listdir(directory):
            m = re.fullmatch(rf"step_(\d+)_{re.escape(split)}\.json", name)
            if m:
                found[int(m.group(1))] = os.path.join(directory, name)
    return found


def read_floors(workdir: str, notes: list[str]) -> dict | None:
    """The constant-program floors (`noop_floor`, `best_constant`) and the references'
    `reference_distinct` of the newest readable test-split summary `kareljax eval` wrote
    (`eval_summaries`), or None with a note. A summary that does not read (one from an earlier
    kareljax lacks a field) is noted with the `kareljax eval` that writes it again."""
    directory = os.path.join(workdir, "eval")
    for step, path in sorted(eval_summaries(workdir).items(), reverse=True):
        try:
            summary = json.loads(storage.read_text(path))
            best = dict(summary["best_constant"])
            floors = {"noop_floor": float(summary["noop_floor"]),
                      "best_constant": {**best, "correct": float(best["correct"]),
                                        "searched": str(best["searched"])},
                      "reference_distinct": float(summary["reference_distinct"])}
            if "copy_floor" in summary:          # execution order: the inputs copied out
                floors["copy_floor"] = float(summary["copy_floor"])
            return floors
        except (OSError, ValueError, KeyError, TypeError):
            notes.append(f"{path}: no readable floors (`kareljax eval --workdir {workdir} "
                         f"--step {step}` writes the summary again)")
    notes.append(f"no test summary of `kareljax eval` under {directory}: floors not shown")
    return None


def load_run(workdir: str) -> RunData:
    """Everything the report needs from a run directory (see the module docstring)."""
    workdir = os.fspath(workdir)
    notes: list[str] = []
    rows = read_results(os.path.join(workdir, RESULTS_FILE))
    results = [r for r in rows if r.get("layer") is None]
    layer_results = [r for r in rows if r.get("layer") is not None]
    metrics_path = os.path.join(workdir, METRICS_FILE)
    metrics = read_metrics(metrics_path)
    if metrics is None:
        notes.append(f"{metrics_path} does not exist: no training loss or val accuracy curves")
        metrics = ([], [], 0)
    elif metrics[2]:
        notes.append(f"{metrics_path}: {metrics[2]} unreadable line(s) ignored")
    config_path = os.path.join(workdir, CONFIG_FILE)
    total_steps = read_total_steps(config_path)
    if total_steps is None:
        notes.append(f"{config_path} is missing or has no train.num_steps: training phases not marked")
    generation = read_generation(workdir, notes)
    unprobed = sorted(set(generation) - {r["step"] for r in rows})
    if rows and unprobed:
        notes.append(f"steps {unprobed} have test collections but no probes in {RESULTS_FILE}: "
                     "the scan skips a checkpoint whose programs give no samples at every "
                     "offset (a babbling model's programs can be that short; `kareljax scan` "
                     "printed each step's reason), and a scan run before a step was collected "
                     "does not have it")
    floors = read_floors(workdir, notes)
    return RunData(workdir, results, layer_results, generation, metrics[0], metrics[1],
                   total_steps, notes, floors, read_forced_steps(workdir), read_order(config_path))


def read_forced_steps(workdir: str) -> frozenset:
    """The collected steps whose programs were the references fed by forced decoding, not the
    model's own (unreadable indexes are left out; `read_generation` notes them)."""
    forced = set()
    for step, directory in store.step_dirs(workdir).items():
        try:
            if store.read_index(directory).get("forced"):
                forced.add(step)
        except (store.CollectionReadError, OSError):
            continue
    return frozenset(forced)


