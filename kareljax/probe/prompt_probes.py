"""Probes at prompt positions and plan probes (issue 31, experiment E1: "absent or unread?").

The grid-frame probes fail because the trained model's program tokens do not carry the robot's
starting pose (docs/results/README.md, "Where the grid frame goes"). E1 asks where the pose is
instead: is it read near the grids and gone by `run{`, or never read at all? And does `run{`
already hold the program the model is about to write?

For stored records (`kareljax.load_run(...).specs(split)`) and the model's own programs
(`Run.decode`), one forward pass over prompt + program keeps every layer's state (the
n_layers + 1 states of `collect.sequence_states(..., per_layer=True)`: the embedding output,
blocks 1 .. n-1, the last block after the final norm) at a few *slots* per spec:

- the prompt positions `POSITIONS`: Input0's robot cell and Output0's robot cell (found per spec
  from the hero glyph, `tokens.HERO0` .. `HERO0 + 3`, among the grid's cells), the `Code:`
  marker and `run{`;
- the state producing each program token k (the position before it, `prompt_length - 1 + k`,
  as `collect.producing_states`; k = 0 is the `run{` state).

Tasks, each a set of (spec, slot) samples with labels:

- pose (`pose_tasks`): example 0's starting facing (4 classes) and square (the interior square
  index row * width + col), at each prompt position: the same labels as `labels.py`'s
  `initial_facing` / `initial_position` (the robot of Input0's grid);
- plan (`plan_tasks`): from the state producing program token k, the action at k + o for
  o in `PLAN_OFFSETS` (o = 0 is the token the state produces, the control; samples only where
  token k + o is an action, so positions past the program's end are masked); from the `run{`
  state, action j of the program for j = 1 .. n (samples where token j - 1 is an action) and the
  whole plan: the first n token slots at once, each an action or NONE (one probe, n heads, right
  when every head is).

`probe` trains one probe per (layer, task) with `fit.fit` vmapped over all of them: one compiled
call for all its tasks x layers at one depth (shared minibatch order, each probe its own key, samples and
inputs z-scored with its own val statistics), padded to fixed sizes (`scan.bucket`), and scores
the majority-label chance level beside each (`scan.majority_accuracy`).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from kareljax.data import generate, tokens as T
from kareljax.data.batches import example_tokens
from kareljax.probe import collect, fit, models, scan

POSITIONS = ("input0_robot", "output0_robot", "code", "run")
RUN_SLOT = POSITIONS.index("run")
PLAN_OFFSETS = (0, 1, 2)
NUM_ACTIONS = len(T.ACTION_IDS)
NONE = NUM_ACTIONS          # the whole plan's label for a slot that holds no action
SPLITS = ("train", "val", "test")


# --- where the states are ---------------------------------------------------------------------

def _check_order(layout: T.Layout) -> None:
    if layout.execution:
        raise ValueError("prompt probes need the synthesis order: in execution order the "
                         "outputs come after the program")


def robot_cells(layout: T.Layout, sequences, example: int = 0) -> np.ndarray:
    """int32 [N, 2]: the positions of the robot glyph in example `example`'s input grid and
    output grid of each token sequence [N, >= prompt_length]; ValueError unless each grid has
    exactly one."""
    _check_order(layout)
    cells = layout.cell_positions()[example].reshape(2, -1)              # [2, h * w]
    ids = np.asarray(sequences)[:, cells]                                 # [N, 2, h * w]
    hero = (ids >= T.HERO0) & (ids < T.HERO0 + 4)
    if not (hero.sum(-1) == 1).all():
        raise ValueError(f"a grid of example {example} without exactly one robot glyph")
    return cells[np.arange(2)[None], hero.argmax(-1)].astype(np.int32)


def slot_positions(layout: T.Layout, sequences, program_tokens: int) -> np.ndarray:
    """int32 [N, len(POSITIONS) + program_tokens]: each spec's slots, the prompt positions
    `POSITIONS`, then the state producing program token k = 0 .. program_tokens - 1."""
    n = len(sequences)
    fixed = np.broadcast_to(np.array([layout.code_marker, layout.program_start], np.int32), (n, 2))
    producing = layout.prompt_length - 1 + np.arange(program_tokens, dtype=np.int32)
    producing = np.broadcast_to(producing, (n, program_tokens))
    return np.concatenate([robot_cells(layout, sequences), fixed, producing], 1)


def slot_names(program_tokens: int) -> tuple[str, ...]:
    return POSITIONS + tuple(f"token{k}" for k in range(program_tokens))


def sequences(layout: T.Layout, records: dict, programs) -> np.ndarray:
    """int32 [N, prompt_length + P]: each spec's prompt (through `run{`) and program tokens
    after `run{` (`programs` [N, 1 + P] from `run{`, as `Run.decode` gives them)."""
    _check_order(layout)
    prompts = example_tokens(layout, records["inputs"], records["outputs"],
                             records["program"])[:, :layout.prompt_length]
    return np.concatenate([np.asarray(prompts, np.int32),
                           np.asarray(programs, np.int32)[:, 1:]], 1)


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _states_at(graphdef, params, sequence, positions):
    """[B, layers, K, d]: every layer's state at positions [B, K] of sequences [B, T]."""
    states = collect.sequence_states(graphdef, params, sequence, per_layer=True)  # [L, B, T, d]
    picked = jnp.take_along_axis(states, positions[None, :, :, None], axis=2)
    return jnp.moveaxis(picked, 0, 1)


def states(model, layout: T.Layout, records: dict, programs, batch_size: int = 256) -> dict:
    """{"states": float32 [N, layers, K, d], "positions": int32 [N, K], "names": K names}: every
    layer's state at each spec's slots (`slot_positions`), in batches of `batch_size` (the last
    padded, so one compilation serves every batch)."""
    seq = sequences(layout, records, programs)
    width = seq.shape[1] - layout.prompt_length
    positions = slot_positions(layout, seq, width)
    graphdef, params = nnx.split(model)
    out = []
    for start in range(0, len(seq), batch_size):
        rows = np.arange(start, min(start + batch_size, len(seq)))
        padded = np.pad(rows, (0, batch_size - len(rows)), mode="edge")
        picked = _states_at(graphdef, params, seq[padded], positions[padded])
        out.append(np.asarray(picked)[:len(rows)])
    return {"states": np.concatenate(out), "positions": positions, "names": slot_names(width)}


# --- labels ------------------------------------------------------------------------------------

def pose_labels(layout: T.Layout, records: dict, example: int = 0) -> dict:
    """{"facing": int32 [N] (0 N, 1 E, 2 S, 3 W), "position": int32 [N] (interior square
    row * width + col)}: the robot's pose in example `example`'s input grid."""
    start = generate.worlds_from_glyphs(np.asarray(records["inputs"])[:, example])
    return {"facing": np.asarray(start.facing, np.int32),
            "position": ((start.row - 1) * layout.width + start.col - 1).astype(np.int32)}


def action_ids(programs) -> np.ndarray:
    """int32 [N, P]: the action id of each program token after `run{` (programs [N, 1 + P] from
    `run{`), -1 for a token that is no action (`}`, keywords, PAD)."""
    ids = np.asarray(programs, np.int32)[:, 1:]
    action = ids - T.ACTION0
    return np.where((action >= 0) & (action < NUM_ACTIONS), action, -1).astype(np.int32)


def plan_labels(programs, offsets=PLAN_OFFSETS) -> np.ndarray:
    """int32 [N, P, len(offsets)]: from the state producing program token k, the action at
    token k + o (-1: none there, masked)."""
    actions = action_ids(programs)
    n, p = actions.shape
    padded = np.pad(actions, ((0, 0), (0, max(offsets))), constant_values=-1)
    return np.stack([padded[:, o:o + p] for o in offsets], -1)


def whole_plan(programs, n_actions: int = 3) -> np.ndarray:
    """int32 [N, n_actions]: the first n_actions token slots after `run{`, each an action id or
    NONE."""
    actions = action_ids(programs)[:, :n_actions]
    actions = np.pad(actions, ((0, 0), (0, n_actions - actions.shape[1])), constant_values=-1)
    return np.where(actions >= 0, actions, NONE).astype(np.int32)


# --- tasks -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Task:
    """One probe target: `name`, the `slot` its samples are read at (a name of `POSITIONS`, or
    "program" for the states producing program tokens), its heads' classes, and per split the
    samples: (spec [M], slot index [M], labels int32 [M, len(heads)])."""
    name: str
    slot: str
    heads: tuple[int, ...]
    samples: dict

    def count(self, split: str) -> int:
        return len(self.samples[split][0])


def pose_tasks(layout: T.Layout, records: dict) -> list[Task]:
    """The starting facing and square at each of `POSITIONS` (records: {split: records})."""
    labels = {s: pose_labels(layout, records[s]) for s in SPLITS}
    tasks = []
    for slot, position in enumerate(POSITIONS):
        for name, classes in (("facing", 4), ("position", layout.height * layout.width)):
            samples = {}
            for s in SPLITS:
                n = len(labels[s][name])
                samples[s] = (np.arange(n), np.full(n, slot), labels[s][name][:, None])
            tasks.append(Task(name, position, (classes,), samples))
    return tasks


def plan_tasks(programs: dict, offsets=PLAN_OFFSETS, n_actions: int = 3) -> list[Task]:
    """The plan tasks of the model's programs ({split: programs [N, 1 + P] from `run{`}):
    `next+o` at every program token's producing state, `action<j>` and `whole_plan` at `run{`."""
    tasks = []
    for i, o in enumerate(offsets):
        samples = {}
        for s in SPLITS:
            labels = plan_labels(programs[s], offsets)[..., i]               # [N, P]
            spec, token = np.nonzero(labels >= 0)
            samples[s] = (spec, len(POSITIONS) + token, labels[spec, token][:, None])
        tasks.append(Task(f"next+{o}", "program", (NUM_ACTIONS,), samples))
    for j in range(n_actions):
        samples = {}
        for s in SPLITS:
            actions = whole_plan(programs[s], n_actions)[:, j]
            spec = np.nonzero(actions != NONE)[0]
            samples[s] = (spec, np.full(len(spec), RUN_SLOT), actions[spec][:, None])
        tasks.append(Task(f"action{j + 1}", "run", (NUM_ACTIONS,), samples))
    samples = {}
    for s in SPLITS:
        plan = whole_plan(programs[s], n_actions)
        samples[s] = (np.arange(len(plan)), np.full(len(plan), RUN_SLOT), plan)
    tasks.append(Task("whole_plan", "run", (NUM_ACTIONS + 1,) * n_actions, samples))
    return tasks


# --- probes ------------------------------------------------------------------------------------

@functools.partial(jax.jit, static_argnames=("hidden", "num_outputs", "options"))
def fit_groups(keys, data_key, x_train, x_val, x_test, y_train, y_val, y_test, mask, offset,
               valid, counts, *, hidden: tuple[int, ...], num_outputs: int,
               options: fit.FitOptions) -> dict:
    """`fit.fit` vmapped over G groups, one probe each: keys [G], inputs [G, M_split, d],
    labels [G, M_split, heads], head layouts [G, ...], counts int32 [G, 3] (real rows of each
    split). Returns fit's results, each [G]."""
    def one(key, xt, xv, xs, yt, yv, ys, m, o, v, c):
        out = fit.fit(key[None], data_key, yt[None], yv[None], ys[None], m[None], o[None],
                      v[None], xt, xv, xs, (c[0], c[1], c[2]), hidden=hidden,
                      num_outputs=num_outputs, options=options)
        return jax.tree.map(lambda a: a[0], out)
    return jax.vmap(one)(keys, x_train, x_val, x_test, y_train, y_val, y_test, mask, offset,
                         valid, counts)


def _inputs(states: np.ndarray, task: Task, split: str, rows: int) -> np.ndarray:
    """float32 [layers, rows, d]: the task's samples' states at every layer, zero-padded."""
    spec, slot, _ = task.samples[split]
    x = np.zeros((states.shape[1], rows, states.shape[-1]), np.float32)
    x[:, :len(spec)] = np.moveaxis(states[spec, :, slot], 0, 1)
    return x


def _zscore(xs: list[np.ndarray], n_val: int) -> list[np.ndarray]:
    """Inputs [layers, M, d] of the three splits z-scored with the first n_val val rows'
    statistics (none: left as they are)."""
    if not n_val:
        return xs
    val = xs[1][:, :n_val]
    mean, std = val.mean(1, keepdims=True), val.std(1, keepdims=True) + 1e-6
    return [(x - mean) / std for x in xs]


def probe(key, states: dict, tasks: list[Task], *, hidden: tuple[int, ...],
          options: fit.FitOptions) -> list[dict]:
    """Trains a probe per (layer, task) on states {split: [N, layers, K, d]}, in one vmapped
    `fit` call; returns one row per probe: {layer, task, slot, val_acc, test_acc, best_step,
    train_acc, train_acc_rise, chance (majority label, test), n_train, n_val, n_test}.
    Accuracies are None for a task without samples in a split (it is not trained)."""
    layers = states["train"].shape[1]
    trained = [t for t in tasks if all(t.count(s) for s in SPLITS)]
    results = _fit_tasks(key, states, trained, hidden, options) if trained else {}
    rows = []
    for task in tasks:
        n = {f"n_{s}": task.count(s) for s in SPLITS}
        for layer in range(layers):
            scores = results.get((task.name, task.slot, layer), dict.fromkeys(
                ("val_acc", "test_acc", "train_acc", "train_acc_rise", "best_step", "chance")))
            rows.append({"layer": layer, "task": task.name, "slot": task.slot, **scores, **n})
    return rows


def _fit_tasks(key, states: dict, tasks: list[Task], hidden, options) -> dict:
    """{(task, slot, layer): scores} of `probe`'s vmapped call for tasks with samples in every
    split."""
    layers = states["train"].shape[1]
    counts = np.array([[t.count(s) for s in SPLITS] for t in tasks], np.int32)       # [T, 3]
    rows = [scan.bucket(int(counts[:, i].max())) for i in range(3)]
    num_heads = max(len(t.heads) for t in tasks)
    num_outputs = max(sum(t.heads) for t in tasks)
    layouts = [models.HeadLayout.of(t.heads, num_heads, num_outputs) for t in tasks]

    xs = [[], [], []]
    ys = [[], [], []]
    for t, task in enumerate(tasks):
        per_split = [_inputs(states[s], task, s, rows[i]) for i, s in enumerate(SPLITS)]
        for i, x in enumerate(_zscore(per_split, int(counts[t, 1]))):
            xs[i].append(x)
        for i, s in enumerate(SPLITS):
            y = np.zeros((rows[i], num_heads), np.int32)
            labels = task.samples[s][2]
            y[:len(labels), :labels.shape[1]] = labels
            ys[i].append(np.broadcast_to(y, (layers,) + y.shape))
    # groups ordered task-major: group g = task g // layers, layer g % layers
    x_train, x_val, x_test = (np.concatenate(split) for split in xs)
    y_train, y_val, y_test = (np.concatenate(split) for split in ys)
    stack = lambda name: np.repeat(np.stack([getattr(lay, name) for lay in layouts]),  # noqa: E731
                                   layers, 0)
    group_counts = np.repeat(counts, layers, 0)
    keys = jax.random.split(jax.random.fold_in(key, 0), len(tasks) * layers)
    out = fit_groups(keys, jax.random.fold_in(key, 1), x_train, x_val, x_test, y_train, y_val,
                     y_test, stack("mask"), stack("offset"), stack("valid"), group_counts,
                     hidden=tuple(hidden), num_outputs=num_outputs, options=options)
    out = {k: np.asarray(v).reshape(len(tasks), layers) for k, v in out.items()}

    results = {}
    for t, task in enumerate(tasks):
        chance = scan.majority_accuracy(task.samples["train"][2], task.samples["test"][2])
        for layer in range(layers):
            scores = {k: float(out[k][t, layer])
                      for k in ("val_acc", "test_acc", "train_acc", "train_acc_rise")}
            results[(task.name, task.slot, layer)] = {
                **scores, "best_step": int(out["best_step"][t, layer]), "chance": chance}
    return results
