"""Prompt-position and plan probes (issue 31, E1): where the states are, the labels, the probes'
shapes, and a planted signal found in the layer that holds it."""
import jax
import numpy as np
import pytest

from kareljax.data import grammar, tokens
from kareljax.model.transformer import hidden_states
from kareljax.probe import collect, fit, labels, prompt_probes as pp
from tests.probe.conftest import spec_of

LAYOUT = tokens.Layout.for_world(6, 6)          # 4x4 interior, as conftest's worlds
# (row, col, facing glyph) of the robot in the interior of each spec's worlds
ROBOTS = ((0, 0, "^"), (1, 2, ">"), (3, 1, "v"), (2, 3, "<"), (3, 3, ">"), (0, 2, "v"))
PROGRAMS = ("def run() { turn_left(); put_marker() }", "def run() { turn_right() }",
            "def run() { put_marker(); turn_left(); turn_left() }",
            "def run() { turn_right(); put_marker() }", "def run() { turn_left() }",
            "def run() { put_marker(); turn_right(); turn_right(); turn_left() }")


def _world(row: int, col: int, glyph: str) -> str:
    interior = [["."] * 4 for _ in range(4)]
    interior[row][col] = glyph
    interior[(row + 2) % 4][(col + 1) % 4] = "1"       # a marker away from the robot
    return "\n".join(["######"] + ["#" + "".join(r) + "#" for r in interior] + ["######"])


@pytest.fixture(scope="module")
def records():
    specs = [spec_of(source, worlds=(_world(*robot),) + (_world(*ROBOTS[-1 - i]),) * 9)
             for i, (source, robot) in enumerate(zip(PROGRAMS, ROBOTS))]
    return {k: np.concatenate([s[k] for s in specs]) for k in specs[0]}


def test_robot_cells_hold_the_hero_glyph_of_input0_and_output0(records):
    seq = pp.sequences(LAYOUT, records, records["program"])
    cells = pp.robot_cells(LAYOUT, seq)
    assert cells.shape == (len(ROBOTS), 2)
    glyphs = seq[np.arange(len(seq))[:, None], cells]
    assert ((glyphs >= tokens.HERO0) & (glyphs < tokens.HERO0 + 4)).all()
    # Input0's robot is where the world put it; Output0's where the program left it (it only
    # turns and puts markers: the same square, the final facing)
    for i, (row, col, glyph) in enumerate(ROBOTS):
        assert cells[i, 0] == LAYOUT.grid_start(0, False) + row * 4 + col
        assert cells[i, 1] == LAYOUT.grid_start(0, True) + row * 4 + col
        assert glyphs[i, 0] == tokens.HERO0 + "^>v<".index(glyph)
    slots = pp.slot_positions(LAYOUT, seq, 3)
    assert slots[0, 2:].tolist() == [LAYOUT.code_marker, LAYOUT.program_start,
                                      LAYOUT.prompt_length - 1, LAYOUT.prompt_length,
                                      LAYOUT.prompt_length + 1]
    assert seq[0, LAYOUT.code_marker] == tokens.CODE
    assert seq[0, LAYOUT.program_start] == tokens.OPEN


def test_a_grid_without_one_robot_is_an_error(records):
    seq = pp.sequences(LAYOUT, records, records["program"])
    seq[0, pp.robot_cells(LAYOUT, seq)[0, 0]] = tokens.EMPTY
    with pytest.raises(ValueError, match="exactly one robot"):
        pp.robot_cells(LAYOUT, seq)
    with pytest.raises(ValueError, match="synthesis order"):
        pp.robot_cells(tokens.Layout(3, 3, order="execution"), seq)


def test_pose_labels_match_the_grids(records):
    labels = pp.pose_labels(LAYOUT, records)
    glyphs = tokens.CELL_GLYPHS
    for i, grid in enumerate(records["inputs"][:, 0]):
        text = ["".join(glyphs[g] for g in row) for row in grid]
        (row, col), = [(r, c) for r, line in enumerate(text) for c, ch in enumerate(line)
                       if ch in "^>v<"]
        assert labels["facing"][i] == "^>v<".index(text[row][col])
        assert labels["position"][i] == row * LAYOUT.width + col
        assert (row, col, text[row][col]) == ROBOTS[i]


def test_pose_labels_are_labels_py_starting_pose(records, model):
    """The same pose as `labels.labels`' initial_facing / initial_position (from example 0's
    trace), the square as row * width + col."""
    collected = collect.collect_batch(model, LAYOUT, records, grammar.straight_line(14),
                                      max_steps=100, alts=(0,), forced=True)
    samples = labels.aligned(collected, offsets=(0,))
    traced = labels.labels(collected, samples, LAYOUT.height, LAYOUT.width)
    pose = pp.pose_labels(LAYOUT, records)
    spec = samples["spec"]
    assert len(np.unique(spec)) == len(ROBOTS)
    np.testing.assert_array_equal(traced["initial_facing"][0, :, 0, 0], pose["facing"][spec])
    row, col = traced["initial_position"][0, :, 0].T
    np.testing.assert_array_equal(row * LAYOUT.width + col, pose["position"][spec])


def test_plan_labels_look_ahead_and_mask_past_the_end(records):
    programs = records["program"]          # from `run{`, PAD after the final `}`
    a = pp.action_ids(programs)
    # turn_left, put_marker, }: actions 1, 4, then none
    assert a[0, :4].tolist() == [1, 4, -1, -1]
    plan = pp.plan_labels(programs)
    assert plan[0, :3].tolist() == [[1, 4, -1], [4, -1, -1], [-1, -1, -1]]
    assert plan[5, :4].tolist() == [[4, 2, 2], [2, 2, 1], [2, 1, -1], [1, -1, -1]]
    whole = pp.whole_plan(programs, 3)
    assert whole[0].tolist() == [1, 4, pp.NONE] and whole[5].tolist() == [4, 2, 2]
    assert whole[4].tolist() == [1, pp.NONE, pp.NONE]
    split = {s: programs for s in pp.SPLITS}
    tasks = {t.name: t for t in pp.plan_tasks(split)}
    # next+1 from the state producing token k: samples where token k + 1 is an action
    spec, slot, label = tasks["next+1"].samples["test"]
    assert len(spec) == int((plan[..., 1] >= 0).sum())
    assert (slot >= len(pp.POSITIONS)).all()
    assert (label[:, 0] == plan[spec, slot - len(pp.POSITIONS), 1]).all()
    spec, slot, label = tasks["action3"].samples["test"]
    assert spec.tolist() == [2, 5] and (slot == pp.RUN_SLOT).all()
    assert label[:, 0].tolist() == [1, 2]
    assert tasks["whole_plan"].heads == (pp.NUM_ACTIONS + 1,) * 3


def test_states_are_every_layer_at_the_slots(records, model):
    programs = records["program"][:, :6]
    out = pp.states(model, LAYOUT, records, programs, batch_size=4)   # a padded last batch
    n, width = len(ROBOTS), programs.shape[1] - 1
    assert out["states"].shape == (n, model.n_layers + 1, len(pp.POSITIONS) + width,
                                   model.embed.features)
    assert out["names"][:4] == pp.POSITIONS and out["names"][4] == "token0"
    full = np.asarray(hidden_states(model, pp.sequences(LAYOUT, records, programs)))
    rows = np.arange(n)[:, None]
    np.testing.assert_allclose(out["states"], np.moveaxis(full[:, rows, out["positions"]], 0, 1),
                               atol=1e-5)
    # the program slots are the producing states a collection keeps (per layer)
    prompts = pp.sequences(LAYOUT, records, programs)[:, :LAYOUT.prompt_length]
    producing = np.asarray(collect.producing_states(model, prompts, programs[:, 1:], True))
    np.testing.assert_allclose(out["states"][:, :, 4:], np.moveaxis(producing, 0, 1), atol=1e-5)
    # `run{` produces token 0
    np.testing.assert_allclose(out["states"][:, :, pp.RUN_SLOT], out["states"][:, :, 4])


def test_probe_rows_have_the_expected_shapes(records, model):
    programs = records["program"][:, :6]
    states = pp.states(model, LAYOUT, records, programs)["states"]
    split = {s: states for s in pp.SPLITS}
    tasks = pp.pose_tasks(LAYOUT, {s: records for s in pp.SPLITS})
    tasks += pp.plan_tasks({s: programs for s in pp.SPLITS}, n_actions=4)
    options = fit.FitOptions(steps=20, batch_size=8, eval_every=10)
    rows = pp.probe(jax.random.key(0), split, tasks, hidden=(), options=options)
    layers = model.n_layers + 1
    assert len(rows) == layers * len(tasks) == layers * (8 + 3 + 4 + 1)
    by = {(r["task"], r["slot"], r["layer"]): r for r in rows}
    assert len(by) == len(rows)
    for r in rows:
        if r["n_train"]:
            assert 0 <= r["test_acc"] <= 1 and 0 <= r["chance"] <= 1
            assert r["best_step"] in (10, 20)
        else:                                  # no program has a 5th token that is an action
            assert r["test_acc"] is None
    assert by[("action4", "run", 0)]["n_test"] == 1
    assert by[("next+2", "program", 0)]["n_train"] == 3


def test_planted_signals_are_read_in_their_layer_and_slot_only():
    """States of 3 layers at 2 slots: task A's label planted at (layer 1, slot 0), task B's at
    (layer 2, slot 1) (a direction per class plus noise), noise elsewhere. Linear probes must read
    each task where it is planted and nowhere else (a mix-up of tasks, layers or slots fails)."""
    rng = np.random.default_rng(0)
    n, d, classes = {"train": 600, "val": 200, "test": 200}, 16, 4
    planted = {"a": (1, 0), "b": (2, 1)}                  # task -> (layer, slot)
    labels = {t: {s: rng.integers(0, classes, m) for s, m in n.items()} for t in planted}
    directions = {t: rng.normal(size=(classes, d)) * 3 for t in planted}
    states = {}
    for s, m in n.items():
        x = rng.normal(size=(m, 3, 2, d)).astype(np.float32)
        for t, (layer, slot) in planted.items():
            x[:, layer, slot] += directions[t][labels[t][s]]
        states[s] = x
    tasks = [pp.Task(t, f"slot{slot}", (classes,),
                     {s: (np.arange(m), np.full(m, slot), labels[t][s][:, None])
                      for s, m in n.items()})
             for t, (_, slot) in planted.items()]
    rows = pp.probe(jax.random.key(1), states, tasks, hidden=(),
                    options=fit.FitOptions(steps=200, batch_size=64, eval_every=100))
    assert len(rows) == 6
    for r in rows:
        assert 0.2 <= r["chance"] <= 0.35
        if r["layer"] == planted[r["task"]][0]:
            assert r["test_acc"] > 0.9, r
        else:
            assert r["test_acc"] < r["chance"] + 0.15, r


def test_the_experiment_script_draws_its_figure_and_table(tmp_path):
    """docs/results/e1_prompt_probes/run.py's outputs from rows shaped as `probe` gives them."""
    import importlib.util
    import pathlib
    path = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "results" / "e1_prompt_probes"
            / "run.py")
    spec = importlib.util.spec_from_file_location("e1_run", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rows = []
    for step in (100, 0):
        for depth in ("linear", "mlp1"):
            for slot in pp.POSITIONS:
                for task in ("facing", "position"):
                    rows += [{"kind": "pose", "step": step, "depth": depth, "layer": layer,
                              "task": task, "slot": slot, "test_acc": 0.1 * layer,
                              "chance": 0.25, "train_acc": 0.5, "train_acc_rise": 0.0,
                              "n_train": 10, "n_test": 5} for layer in range(3)]
            for task, slot, n in (("next+0", "program", 10), ("action3", "run", 0)):
                rows += [{"kind": "plan", "step": step, "depth": depth, "layer": layer,
                          "task": task, "slot": slot, "test_acc": 0.9 if n else None,
                          "chance": 0.5 if n else None, "train_acc": 0.95 if n else None,
                          "train_acc_rise": 0.01 if n else None, "n_train": n, "n_test": n}
                         for layer in range(3)]
    script.write_outputs(rows, str(tmp_path), "mlp1")
    with open(tmp_path / "pose_by_layer.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "plan.md").read_text()
    assert table.index("**step 100, linear**") < table.index("**step 0, mlp1**")
    assert "| next+0 | k | 90.0 | 90.0 | 90.0 | 50.0 | 10 / 10 | 95.0 (+1.0) |" in table
    assert "| action3 | run{ | — | — | — | — | 0 / 0 | — |" in table
