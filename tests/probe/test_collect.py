"""Collection: hidden state <-> program token <-> trace alignment on a hand-made spec."""
import numpy as np

from kareljax.data import grammar, tokens
from kareljax.model.transformer import hidden_states
from kareljax.probe import collect

def test_alignment_on_a_hand_made_spec(spec, model):
    layout = tokens.Layout.for_world(6, 6)
    out = collect.collect_batch(model, layout, spec, grammar.straight_line(14), max_steps=100,
                                alts=(0, 3), forced=True)
    # tokens: the forced program, then PAD; statements 0..3 then -1
    np.testing.assert_array_equal(out["program"][0, :5], spec["program"][0, 1:6])
    assert out["statement"][0, :6].tolist() == [0, 1, 2, 3, -1, -1]
    assert out["valid"][0].sum() == 5 and out["correct"][0] and out["exact"][0]
    # the trace of example 0, original semantics: after move (2,3)E, turn_right (2,3)S,
    # move (3,3)S on the marker, pick_marker (3,3)S with none left
    t = {f: out[f"trace_{f}"][0, 0, 0] for f in ("row", "col", "facing", "markers_here", "stmt")}
    assert t["row"][:5].tolist() == [2, 2, 2, 3, 3]
    assert t["col"][:5].tolist() == [2, 3, 3, 3, 3]
    assert t["facing"][:5].tolist() == [1, 1, 2, 2, 2]
    assert t["markers_here"][:5].tolist() == [0, 0, 0, 1, 0]
    assert t["stmt"][:5].tolist() == [-1, 0, 1, 2, 3]
    # alternative 0 (P->U, U->P, R->L, L->R, M->M) turns left instead: ends at (1,3) facing N
    alt = {f: out[f"trace_{f}"][0, 0, 1] for f in ("row", "col", "facing")}
    assert (alt["row"][4], alt["col"][4], alt["facing"][4]) == (1, 3, 0)
    # the state producing program token j is the residual stream at the position before it
    prompt = layout.prompt_length
    sequence = np.concatenate([
        np.asarray(collect.example_tokens(layout, spec["inputs"], spec["outputs"],
                                          spec["program"]))[:, :prompt], out["program"]], 1)
    full = np.asarray(hidden_states(model, sequence)).mean(0)
    np.testing.assert_allclose(out["states"][0], full[0, prompt - 1:prompt - 1 + 15], atol=1e-5)


def test_producing_state_does_not_see_its_token(spec, model):
    layout = tokens.Layout.for_world(6, 6)
    prompts = collect.example_tokens(layout, spec["inputs"], spec["outputs"],
                                     spec["program"])[:, :layout.prompt_length]
    a = spec["program"][:, 1:].copy()
    b = a.copy()
    b[0, 2] = tokens.ACTION0 + 4  # change program token 2
    sa = np.asarray(collect.producing_states(model, prompts, a))
    sb = np.asarray(collect.producing_states(model, prompts, b))
    np.testing.assert_allclose(sa[0, :3], sb[0, :3], atol=1e-6)   # states producing tokens 0..2
    assert np.abs(sa[0, 3] - sb[0, 3]).max() > 1e-4                # the next one sees it


def test_per_layer_states(spec, model):
    layout = tokens.Layout.for_world(6, 6)
    prompts = collect.example_tokens(layout, spec["inputs"], spec["outputs"],
                                     spec["program"])[:, :layout.prompt_length]
    per_layer = np.asarray(collect.producing_states(model, prompts, spec["program"][:, 1:], True))
    assert per_layer.shape == (2 + 1, 1, 15, 64)   # 2 blocks: n + 1 states
    mean = np.asarray(collect.producing_states(model, prompts, spec["program"][:, 1:]))
    np.testing.assert_allclose(per_layer.mean(0), mean, atol=1e-5)
