"""Collection in execution order: the reference program is the model's input, and the states kept
are those producing its tokens, at the same offsets from `run{` as in synthesis order."""
import numpy as np

from kareljax.data import grammar, tokens
from kareljax.model.transformer import hidden_states
from kareljax.probe import collect

EXEC = tokens.Layout.for_world(6, 6, order="execution")


def test_states_at_the_program_tokens(spec, model):
    out = collect.collect_batch(model, EXEC, spec, grammar.straight_line(14), max_steps=100,
                                alts=(0, 3), forced=False)
    # the reference program whatever `forced` says, its statements 0..3 then -1
    np.testing.assert_array_equal(out["program"][0], spec["program"][0, 1:])
    assert out["statement"][0, :6].tolist() == [0, 1, 2, 3, -1, -1]
    assert out["valid"][0].sum() == 5
    # the state producing program token j: position prompt_length - 1 + j of the whole sequence
    # (outputs included: the forward pass is causal, so they change nothing before them)
    whole = collect.example_tokens(EXEC, spec["inputs"], spec["outputs"], spec["program"])
    assert whole.shape[1] == EXEC.max_length and EXEC.prompt_length == EXEC.program_start + 1
    full = np.asarray(hidden_states(model, whole)).mean(0)
    start = EXEC.prompt_length - 1
    np.testing.assert_allclose(out["states"][0], full[0, start:start + 15], atol=1e-5)
    # ... which is not where a synthesis example puts its program
    synthesis = tokens.Layout.for_world(6, 6)
    assert synthesis.program_start != EXEC.program_start
    # the same traces as a synthesis collection of the same spec on its reference program
    forced = collect.collect_batch(model, synthesis, spec, grammar.straight_line(14),
                                   max_steps=100, alts=(0, 3), forced=True)
    for key in ("trace_row", "trace_col", "trace_facing", "trace_stmt", "final_markers",
                "statement", "program"):
        np.testing.assert_array_equal(out[key], forced[key])
    # accuracy is the model's written outputs (an untrained model's are wrong)
    assert not out["correct"][0] and 0 <= out["teacher_forced_cell_accuracy"][0] < 1
    assert out["generated_length"][0] == out["reference_length"][0] == 4
