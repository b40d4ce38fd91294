"""Execution order (issue 31's positive control): inputs, the program, then the outputs. The
layout's positions, the sequence round trip, the training arrays, the dataset's identity, and a
train step on fresh execution-order batches."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kareljax import config_files
from kareljax.data import batches, dataset_config, fresh, tokens as T
from kareljax.karel.world import World

EXEC = T.Layout(3, 3, max_program_tokens=7, order="execution")


def random_records(layout: T.Layout, n: int = 4, seed: int = 0) -> dict:
    """Records {inputs, outputs (glyphs), program (straight-line ids), length} of random cells."""
    rng = np.random.default_rng(seed)
    shape = (n, T.NUM_EXAMPLES, layout.height, layout.width)
    lengths = rng.integers(1, layout.max_program_tokens - 1, n)
    actions = np.where(np.arange(layout.max_program_tokens - 2) < lengths[:, None],
                       rng.integers(0, 5, (n, layout.max_program_tokens - 2)), -1)
    return {"inputs": rng.integers(0, 15, shape).astype(np.uint8),
            "outputs": rng.integers(0, 15, shape).astype(np.uint8),
            "program": T.encode_straight(actions, layout.max_program_tokens).astype(np.uint8),
            "length": lengths.astype(np.uint8)}


# ------------------------------------------------------------------------------------- layout
def test_execution_layout_positions():
    # Examples: | Input_i + 9 cells (x5) | Code: | run{ + 6 slots | Output_i + 9 cells (x5)
    assert (EXEC.code_marker, EXEC.program_start, EXEC.prompt_length) == (51, 52, 53)
    assert (EXEC.program_end, EXEC.max_length) == (59, 109)
    assert [EXEC.marker(i, False) for i in EXEC.shown] == [1, 11, 21, 31, 41]
    assert [EXEC.marker(i, True) for i in EXEC.shown] == [59, 69, 79, 89, 99]
    # the same length as the synthesis example of the same sizes
    assert EXEC.max_length == T.Layout(3, 3, max_program_tokens=7).max_length
    segments = EXEC.segments()
    assert segments[0][1] == 0 and segments[-1][1] + segments[-1][2] == EXEC.max_length
    for (_, start, size), (_, nxt, _) in zip(segments, segments[1:]):
        assert start + size == nxt
    assert [name for name, _, _ in segments[10:14]] == [
        "input grid 4", "Code:", "program (run{ ... })", "Output0"]


@pytest.mark.parametrize("layout", [EXEC, T.Layout(4, 5, n_shown=3, row_separators=True,
                                                   order="execution")])
def test_execution_template_and_cells(layout):
    t = layout.sequence_template()
    cells = layout.cell_positions()
    assert t.shape == (layout.max_length,) and len(np.unique(cells)) == cells.size
    assert (cells[:, 0] < layout.code_marker).all()            # every input before the program
    assert (cells[:, 1] >= layout.program_end).all()           # every output after it
    assert (t[cells] == T.PAD).all()
    slots = layout.program_positions()
    assert t[slots[0]] == T.OPEN and (t[slots[1:]] == T.PAD).all()
    fixed = np.delete(t, np.concatenate([cells.reshape(-1), slots[1:]]))
    assert (fixed != T.PAD).all()                              # everything else is fixed
    for i in layout.shown:
        assert t[layout.marker(i, False)] == T.INPUT0 + i
        assert t[layout.marker(i, True)] == T.OUTPUT0 + i
    assert t[layout.code_marker] == T.CODE and t[0] == T.EXAMPLES
    np.testing.assert_array_equal(layout.template(), t[:layout.prompt_length])


def test_order_is_checked():
    with pytest.raises(ValueError, match="order"):
        T.Layout(order="outputs")


# ------------------------------------------------------------------------------ sequences
def _old_synthesis_tokens(layout, inputs, outputs, program):
    """example_tokens as it was before execution order (the synthesis reference)."""
    n = inputs.shape[0]
    cells = np.stack([inputs[:, :layout.n_shown], outputs[:, :layout.n_shown]], 2)
    cells = cells.reshape(n, -1).astype(np.int32) + T.WALL
    prompt = np.broadcast_to(layout.template()[:-1], (n, layout.prompt_length - 1)).copy()
    prompt[:, layout.cell_positions().reshape(-1)] = cells
    return np.concatenate([prompt, np.asarray(program, np.int32)], 1)


def test_synthesis_sequences_are_unchanged():
    layout = T.Layout(3, 3, max_program_tokens=7)
    r = random_records(layout)
    old = _old_synthesis_tokens(layout, r["inputs"], r["outputs"], r["program"])
    np.testing.assert_array_equal(
        batches.example_tokens(layout, r["inputs"], r["outputs"], r["program"]), old)


def test_execution_sequence_round_trip():
    r = random_records(EXEC)
    ids = batches.example_tokens(EXEC, r["inputs"], r["outputs"], r["program"])
    assert ids.shape == (4, EXEC.max_length)
    # numpy and jax give the same ids
    np.testing.assert_array_equal(ids, np.asarray(batches.example_tokens(
        EXEC, *(jnp.asarray(r[k]) for k in ("inputs", "outputs", "program")))))
    parts = T.split_example(EXEC, ids)
    np.testing.assert_array_equal(parts["inputs"], r["inputs"][:, :5] + T.WALL)
    np.testing.assert_array_equal(parts["outputs"], r["outputs"][:, :5] + T.WALL)
    np.testing.assert_array_equal(parts["program"], r["program"])
    np.testing.assert_array_equal(ids[:, EXEC.program_end], T.OUTPUT0)
    for row, program in zip(ids, parts["program"]):
        text = T.to_text(EXEC, row)
        lines = text.splitlines()
        assert lines[lines.index("Code:") + 1].startswith("run{ ")
        assert lines[lines.index("Code:") + 2] == "Output0"
        np.testing.assert_array_equal(T.from_text(text), row)
        assert len(T.decode_program(program).body) >= 1


def test_encode_example_from_worlds_matches_the_records():
    rng = np.random.default_rng(1)
    shape = (2, 10, 5, 5)
    walls = np.zeros(shape, bool)
    walls[..., 0, :] = walls[..., -1, :] = walls[..., :, 0] = walls[..., :, -1] = True
    worlds = [World(walls, rng.integers(0, 3, shape), rng.integers(1, 4, shape[:2]),
                    rng.integers(1, 4, shape[:2]), rng.integers(0, 4, shape[:2]))
              for _ in range(2)]
    program = T.encode_straight(np.array([[0, 1, -1], [2, 3, 4]]), 7)
    ids = T.encode_example(EXEC, *worlds, program)
    glyphs = [np.asarray(T.world_ids(w)) - T.WALL for w in worlds]
    np.testing.assert_array_equal(ids, batches.example_tokens(EXEC, *glyphs, program))
    np.testing.assert_array_equal(T.encode_prompt(EXEC, *worlds), ids[:, :EXEC.prompt_length])
    markers = np.arange(T.OUTPUT0, T.OUTPUT0 + T.MAX_SHOWN)
    assert not np.isin(ids[:, :EXEC.prompt_length], markers).any()   # no output in the prompt


def test_training_arrays_in_execution_order():
    r = random_records(EXEC)
    b = batches.training_batch(EXEC, r)
    pos = np.arange(EXEC.max_length)
    for i, n in enumerate(r["length"]):
        end = EXEC.program_start + int(n) + 2                  # `run{`, n actions, `}`
        real = (pos < end) | (pos >= EXEC.program_end)
        np.testing.assert_array_equal(b["valid"][i], real)
        np.testing.assert_array_equal(b["loss_mask"][i], real & (pos >= 1))
        assert (b["tokens"][i, end:EXEC.program_end] == T.PAD).all()   # the filling PADs
    program_only = batches.training_batch(EXEC, r, loss_on="program")["loss_mask"]
    assert not program_only[:, EXEC.program_end:].any()
    np.testing.assert_array_equal(program_only.sum(1), r["length"].astype(int) + 1)
    # jax (as fresh data builds it) gives the same arrays
    jb = batches.training_batch(EXEC, {k: jnp.asarray(v) for k, v in r.items()})
    for k in b:
        np.testing.assert_array_equal(np.asarray(jb[k]), b[k])


# ------------------------------------------------------------------------------ dataset identity
def test_order_is_part_of_the_dataset_identity():
    synthesis = config_files.load("configs/quick.py")
    execution = config_files.load("configs/quick.py", ["data.order=execution"])
    assert dataset_config.layout(execution.data).execution
    assert dataset_config.digest(synthesis.data) != dataset_config.digest(execution.data)
    assert dataset_config.dataset_name(synthesis.data) != dataset_config.dataset_name(
        execution.data)
    # a config without the option (written before it existed) is a synthesis one, same name
    legacy = config_files.load("configs/quick.py")
    del legacy.data["order"]
    assert dataset_config.order(legacy.data) == "synthesis"
    assert dataset_config.dataset_name(legacy.data) == dataset_config.dataset_name(
        synthesis.data)
    bad = config_files.load("configs/quick.py", ["data.order=outputs"])
    with pytest.raises(config_files.ConfigError, match="data.order"):
        dataset_config.validate(bad.data)


def test_control_config_validates():
    from kareljax.train import train_config
    config = config_files.load("configs/control_execution.py")
    train_config.validate(config)
    layout = dataset_config.layout(config.data)
    assert layout.execution and layout.max_length <= train_config.model_size(
        config.model).max_len


# ------------------------------------------------------------------------------- a train step
def test_train_step_on_fresh_execution_batches():
    from kareljax.train import mesh as mesh_lib, optimizer, state as state_lib, step
    config = config_files.load("tiny", [
        "data.world_height=5", "data.world_width=5", "data.min_length=1", "data.max_length=3",
        "data.train_lengths=()", "data.max_program_tokens=5", "data.order=execution",
        "train.batch_size=8", "train.num_steps=4", "train.warmup_steps=1",
        "train.data_source=fresh"])
    layout = dataset_config.layout(config.data)
    batch = fresh.fresh_batches(config.data, 8)(0, 0)
    assert batch["tokens"].shape == (8, layout.max_length)
    assert (np.asarray(batch["tokens"])[:, layout.program_end] == T.OUTPUT0).all()
    mesh = mesh_lib.make_mesh(1, 1)
    tx, lr = optimizer.make(config.train)
    _, shardings = state_lib.abstract_state(config.model, tx, mesh)
    state = state_lib.init_state(config.model, tx, 0, shardings)
    train = step.make_train_step(state_lib.graphdef(config.model), tx, lr, shardings,
                                 mesh_lib.batch_sharding(mesh, 3, 1), mesh_lib.replicated(mesh),
                                 trace_guard=False)
    losses = []
    for s in range(3):
        b = fresh.fresh_batches(config.data, 8)(0, s)
        state, metrics = train(state, {k: jnp.asarray(b[k])[None] for k in step.BATCH_KEYS})
        losses.append(float(metrics["loss"]))
        # every output cell is a target: 5 grids of 9 cells and their 5 markers per sequence
        out = np.asarray(b["loss_mask"])[:, layout.program_end:]
        assert out.all() and out.shape[1] == 50
    assert int(state["step"]) == 3 and all(np.isfinite(losses))
    assert jax.tree.leaves(state["params"])
