"""Collection for probes (docs/spec.md §8): decode each spec, keep the hidden state that produces every
program token and the shown examples' traces under the original and alternative semantics.

For a batch of specs:

1. greedy grammar-constrained decoding (or forced decoding of the reference programs; in
   execution order, `tokens.Layout.order`, the reference programs always: the model reads them);
2. one forward pass over prompt + program with the residual stream captured: the state that
   *produces* program token j (the j-th token after `run{`) sits at the position before it,
   `prompt_length - 1 + j`; reduced to the mean over its n_layers + 1 states (the embedding, blocks 1 .. n-1, the last
   block after the final norm: HuggingFace CodeGen's `hidden_states`) or
   kept per layer (stored [specs, layers, P, d], specs first like every stored array);
3. one interpreter call running every program on its shown inputs under every semantics row
   (row 0 the original, then the chosen alternatives), with action traces (and, when the grammar
   has conditionals, the trace of condition evaluations, for the branch task);
4. accuracy (`eval.accuracy.score`; in execution order the outputs the model writes,
   `eval.execution_order.score`: `correct` = all shown output grids right).

The prompt is the example up to `run{` in either order (`layout.prompt_length`), so the states sit
at the same offsets from `run{`; in execution order the outputs come after the program and do not
enter the forward pass (it is causal).

`token_statements` maps each program token to the pre-order index of the statement it starts
(-1 for other tokens), the index the traces record.
"""
from __future__ import annotations

import functools

import numpy as np
import jax
import jax.numpy as jnp
from flax import nnx

from kareljax.data import generate, grammar as grammar_lib, tokens as T
from kareljax.data.batches import example_tokens
from kareljax.eval import accuracy, execution, execution_order
from kareljax.karel import interpreter, semantics
from kareljax.model import data_parallel, decode
from kareljax.model.transformer import forward_with_states

ALL_ALTS = tuple(range(len(semantics.ALT_MAPS)))
_STATEMENT_STARTS = np.zeros(T.VOCAB_SIZE, bool)
_STATEMENT_STARTS[list(T.ACTION_IDS) + [T.IF, T.IFELSE, T.WHILE, T.REPEAT]] = True


def token_statements(program_tokens) -> np.ndarray:
    """int32 [B, P]: the statement index each program token (after `run{`) starts, else -1."""
    ids = np.asarray(program_tokens)
    starts = _STATEMENT_STARTS[ids]
    return np.where(starts, np.cumsum(starts, axis=1) - 1, -1).astype(np.int32)


@functools.partial(jax.jit, static_argnames=("graphdef", "per_layer"))
def sequence_states(graphdef, params, sequence, *, per_layer: bool) -> jax.Array:
    """The residual stream of token sequences [B, T]: its mean over layers [B, T, d], or every
    layer [layers, B, T, d] (`per_layer`). The jitted forward pass of a collection."""
    _, states = forward_with_states(nnx.merge(graphdef, params), sequence)
    return states if per_layer else states.mean(0)


def producing_states(model, prompts, program_tokens, per_layer: bool = False):
    """Hidden states [B, P, d] (or [layers, B, P, d]) producing each program token [B, P]. For a
    model replicated over a mesh (`data_parallel.replicate`) the rows are split over its devices
    and the states come back as a host array."""
    prompts = np.asarray(prompts, np.int32)
    program_tokens = np.asarray(program_tokens, np.int32)
    graphdef, params = nnx.split(model)
    mesh = data_parallel.mesh_of(params)
    sequence, n = data_parallel.shard_rows(np.concatenate([prompts, program_tokens], 1), mesh)
    start = prompts.shape[1] - 1
    states = _producing(graphdef, params, sequence, start=start, width=program_tokens.shape[1],
                        per_layer=per_layer)
    if mesh is None:
        return jnp.moveaxis(states, 0, 1) if per_layer else states
    states = data_parallel.to_host(states, n)
    return np.moveaxis(states, 0, 1) if per_layer else states


@functools.partial(jax.jit, static_argnames=("graphdef", "start", "width", "per_layer"))
def _producing(graphdef, params, sequence, *, start: int, width: int, per_layer: bool):
    """The states producing tokens start+1 ... start+width, batch first ([B, layers, P, d])."""
    states = sequence_states(graphdef, params, sequence, per_layer=per_layer)
    states = states[..., start:start + width, :]
    return jnp.moveaxis(states, 0, 1) if per_layer else states


def reference_tokens(records: dict, max_new: int) -> np.ndarray:
    """int32 [B, max_new]: the reference programs' tokens after `run{`, PAD-filled (what forced
    decoding of them returns)."""
    reference = np.asarray(records["program"], np.int32)[:, 1:1 + max_new]
    return np.pad(reference, [(0, 0), (0, max_new - reference.shape[1])])


def collect_batch(model, layout: T.Layout, records: dict, grammar: grammar_lib.Grammar, *,
                  max_steps: int, alts=ALL_ALTS, forced: bool = False,
                  per_layer: bool = False) -> dict:
    """Everything the probes need for one batch of stored records (see the module docstring).

    In execution order (`layout.execution`) the program is part of the model's input: the states
    are those producing the reference program's tokens whatever `forced` says, and `correct`,
    `correct_gen` say whether the model writes every output cell (`eval.execution_order.score`)."""
    n = len(records["length"])
    prompts = example_tokens(layout, records["inputs"], records["outputs"],
                             records["program"])[:, :layout.prompt_length]
    max_new = grammar.max_tokens - 1
    if layout.execution:
        program = reference_tokens(records, max_new)
    else:
        forced_tokens = None
        if forced:
            reference = np.asarray(records["program"])[:, 1:]
            forced_tokens = np.where(reference == T.PAD, -1, reference)[:, :max_new]
        program = np.asarray(decode.greedy_decode(model, prompts, grammar, max_new,
                                                  forced_tokens))
    states = np.asarray(producing_states(model, prompts, program, per_layer))
    if per_layer:  # stored spec-first like every other array: [B, layers, P, d]
        states = np.moveaxis(states, 0, 1)
    with_open = np.asarray(decode.with_opening(program))
    if layout.execution:
        results = {k: v for k, v in execution_order.score(model, layout, records,
                                                          greedy=False).items()
                   if k in _EXECUTION_RESULTS}
    else:
        results = accuracy.score(with_open, records, layout.n_shown, max_steps)
    traces = shown_traces(with_open, records, layout.n_shown, alts, max_steps,
                          trace_len=max_new + 1,
                          cond_trace_len=max_new + 1 if has_conditions(grammar) else 0)
    return {"program": program.astype(np.uint8), "statement": token_statements(program),
            "valid": program != T.PAD, "states": states, **traces,
            **results, "inputs": np.asarray(records["inputs"])[:, :layout.n_shown],
            "spec_index": np.arange(n)}


# What a collection keeps of `execution_order.score`: `accuracy.score`'s keys, and the outputs'.
_EXECUTION_RESULTS = ("correct", "correct_gen", "exact", "parsed", "generated_length",
                      "reference_length", "teacher_forced_cell_accuracy")


def has_conditions(grammar: grammar_lib.Grammar) -> bool:
    """Whether programs of `grammar` can contain if/ifelse/while."""
    return grammar.max_depth > 0 and bool(grammar.token_ok[[T.IF, T.IFELSE, T.WHILE]].any())


def shown_traces(program_ids, records: dict, n_shown: int, alts, max_steps: int,
                 trace_len: int, cond_trace_len: int = 0) -> dict:
    """Action traces of every program on its shown inputs under [original] + alts:
    `trace_<field>` [B, n_shown, S, K] (row, col, facing, markers_here, stmt, valid) and the final
    worlds' `final_markers` [B, n_shown, S, H, W]; with `cond_trace_len`, the condition
    evaluations in order, `cond_<field>` [B, n_shown, S, Kc] (value, stmt, valid)."""
    program_ids = np.asarray(program_ids)
    inputs = generate.worlds_from_glyphs(np.asarray(records["inputs"])[:, :n_shown])
    num = len(program_ids)
    code, worlds, _ = execution.padded_batch(program_ids, inputs)
    out = interpreter.execute(code, worlds, semantics.semantics_table(tuple(alts)),
                              max_steps=max_steps, trace_len=trace_len,
                              cond_trace_len=cond_trace_len, max_markers=1)
    trace = {f"trace_{name}": np.asarray(getattr(out.trace, name))[:num]
             for name in out.trace._fields}
    if cond_trace_len and out.cond_trace is not None:
        trace.update({f"cond_{name}": np.asarray(getattr(out.cond_trace, name))[:num]
                      for name in out.cond_trace._fields})
    elif cond_trace_len:  # a batch of straight-line programs evaluates no condition
        shape = trace["trace_stmt"].shape[:3] + (cond_trace_len,)
        trace.update({"cond_value": np.zeros(shape, bool), "cond_stmt": np.zeros(shape, np.int16),
                      "cond_valid": np.zeros(shape, bool)})
    trace["final_markers"] = np.asarray(out.markers)[:num]
    trace["num_actions"] = np.asarray(out.num_actions)[:num]
    return trace
