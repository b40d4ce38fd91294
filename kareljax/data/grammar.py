"""The program grammar over token ids, as a bounded pushdown automaton for constrained decoding.

Programs (docs/tokens.md):

    prog  := run{ stmt+ }
    stmt  := action | if c stmt+ } | ifelse c stmt+ } else stmt+ } | while c stmt+ }
           | repeat xN stmt+ }
    c     := [not] condition

The state is a few int32 arrays of fixed shape (a stack of open block kinds, bounded depth), and
`allowed`/`advance`/`done` are branch-free jax.numpy, so they run under jit and vmap. A token is
allowed only if a complete program can still follow it within `max_tokens` (counting `run{` and the
final `}`), so no path through `allowed` ever reaches a dead end. After the final `}` only PAD is
allowed. `straight_line(14)` is the docs/spec.md §7 constraint: `run{`, 1..14 actions, `}`.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from kareljax.data import tokens as T
from kareljax.karel import syntax

# Phases: what the automaton expects next.
START, STMT, STMT_OR_CLOSE, COND_OR_NOT, COND, COUNT, ELSE, DONE, ERROR = range(9)
# Block kinds on the stack.
NONE, PROGRAM, IF, IFELSE_THEN, IFELSE_ELSE, WHILE, REPEAT = range(7)
# Token classes.
(C_OTHER, C_PAD, C_OPEN, C_ACTION, C_IF, C_IFELSE, C_WHILE, C_REPEAT, C_NOT, C_COND, C_COUNT,
 C_ELSE, C_CLOSE) = range(13)

_CLASS = np.full(T.VOCAB_SIZE, C_OTHER, np.int32)
_CLASS[T.PAD], _CLASS[T.OPEN], _CLASS[T.CLOSE], _CLASS[T.ELSE], _CLASS[T.NOT] = (
    C_PAD, C_OPEN, C_CLOSE, C_ELSE, C_NOT)
_CLASS[T.IF], _CLASS[T.IFELSE], _CLASS[T.WHILE], _CLASS[T.REPEAT] = C_IF, C_IFELSE, C_WHILE, C_REPEAT
_CLASS[T.ACTION_IDS] = C_ACTION
_CLASS[T.COND0:T.COND0 + len(syntax.CONDITIONS)] = C_COND
_CLASS[T.COUNT0:T.COUNT0 + syntax.MAX_REPEAT + 1] = C_COUNT

_PUSH = np.zeros(13, np.int32)  # block kind a token class opens
_PUSH[[C_OPEN, C_IF, C_IFELSE, C_WHILE, C_REPEAT]] = [PROGRAM, IF, IFELSE_THEN, WHILE, REPEAT]

_NEXT = np.full((9, 13), ERROR, np.int32)  # phase after a token (C_CLOSE is handled apart)
_NEXT[START, C_OPEN] = STMT
for _p in (STMT, STMT_OR_CLOSE):
    _NEXT[_p, C_ACTION] = STMT_OR_CLOSE
    _NEXT[_p, [C_IF, C_IFELSE, C_WHILE]] = COND_OR_NOT
    _NEXT[_p, C_REPEAT] = COUNT
_NEXT[STMT_OR_CLOSE, C_CLOSE] = STMT_OR_CLOSE
_NEXT[COND_OR_NOT, C_NOT] = COND
_NEXT[[COND_OR_NOT, COND], C_COND] = STMT
_NEXT[COUNT, C_COUNT] = STMT
_NEXT[ELSE, C_ELSE] = STMT
_NEXT[DONE, C_PAD] = DONE

# Fewest tokens that complete a program: per phase, plus per open block (an ifelse's then-block
# still needs `} else action }`).
_PHASE_NEED = np.array([3, 1, 0, 2, 2, 2, 2, 0, 0], np.int32)  # START: run{ action }
_CLOSE_NEED = np.array([0, 1, 1, 4, 1, 1, 1], np.int32)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class State:
    """Automaton state (any leading batch axes)."""

    phase: jax.Array   # int32 [...]
    depth: jax.Array   # int32 [...]: open blocks, `run{` included
    length: jax.Array  # int32 [...]: program tokens consumed (PAD not counted)
    stack: jax.Array   # int32 [..., max_depth + 1]: kinds of open blocks, bottom first


@dataclasses.dataclass(frozen=True)
class Grammar:
    """Bounds of the program grammar: hashable, so it can be a static argument of jit.

    max_tokens: program tokens from `run{` to the final `}`, inclusive.
    max_depth:  nested control statements (0 = straight-line programs only).
    exclude:    token names never generated (e.g. `("while", "repeat")` for the cond preset).
    """

    max_tokens: int = 64
    max_depth: int = 3
    exclude: tuple[str, ...] = ()

    def __post_init__(self):
        if self.max_tokens < 3 or self.max_depth < 0:
            raise ValueError("need max_tokens >= 3 and max_depth >= 0")
        ok = self.token_ok
        if any(name not in T.ID for name in self.exclude):
            raise ValueError(f"unknown token names in exclude: {self.exclude}")
        if not ok[[T.OPEN, T.CLOSE, T.ELSE, T.PAD]].all():
            raise ValueError("run{, }, else and <pad> cannot be excluded")
        conds = ok[T.COND0:T.COND0 + len(syntax.CONDITIONS)].any()
        if (not ok[T.ACTION_IDS].any() or (ok[[T.IF, T.IFELSE, T.WHILE]].any() and not conds)
                or (ok[T.REPEAT] and not ok[T.COUNT0:T.COUNT0 + syntax.MAX_REPEAT + 1].any())):
            raise ValueError("exclude leaves no action, or a statement with no condition/count")

    @property
    def token_ok(self) -> np.ndarray:
        ok = np.ones(T.VOCAB_SIZE, bool)
        ok[[T.ID[n] for n in self.exclude if n in T.ID]] = False
        return ok

    def init(self, shape: tuple[int, ...] = ()) -> State:
        """The state before `run{`."""
        z = jnp.zeros(shape, jnp.int32)
        return State(z + START, z, z, jnp.zeros(shape + (self.max_depth + 1,), jnp.int32))

    def opened(self, shape: tuple[int, ...] = ()) -> State:
        """The state after `run{`: where decoding starts, the prompt ending with `run{`."""
        z = jnp.zeros(shape, jnp.int32)
        stack = jnp.zeros(shape + (self.max_depth + 1,), jnp.int32).at[..., 0].set(PROGRAM)
        return State(z + STMT, z + 1, z + 1, stack)

    def advance(self, state: State, token) -> State:
        """The state after `token` (ERROR, absorbing, if the token is not allowed)."""
        token = jnp.asarray(token, jnp.int32)
        cls = jnp.asarray(_CLASS)[jnp.clip(token, 0, T.VOCAB_SIZE - 1)]
        valid = (token >= 0) & (token < T.VOCAB_SIZE) & jnp.asarray(self.token_ok)[
            jnp.clip(token, 0, T.VOCAB_SIZE - 1)]
        phase = jnp.asarray(_NEXT)[state.phase, cls]
        cap = self.max_depth + 1
        slots = jnp.arange(cap)
        top = jnp.clip(state.depth - 1, 0, cap - 1)
        top_kind = jnp.take_along_axis(state.stack, top[..., None], -1)[..., 0]
        # Open a block.
        kind = jnp.asarray(_PUSH)[cls]
        push = kind != NONE
        valid &= ~push | (state.depth < cap)
        stack = jnp.where(push[..., None] & (slots == state.depth[..., None]), kind[..., None],
                          state.stack)
        depth = state.depth + push
        # Close a block: an ifelse's then-block turns into its else-block, awaiting `else`.
        close = (cls == C_CLOSE) & (phase == STMT_OR_CLOSE)
        to_else = close & (top_kind == IFELSE_THEN)
        pop = close & ~to_else
        stack = jnp.where(to_else[..., None] & (slots == top[..., None]), IFELSE_ELSE, stack)
        stack = jnp.where(pop[..., None] & (slots == top[..., None]), NONE, stack)
        depth = depth - pop
        phase = jnp.where(to_else, ELSE, jnp.where(pop & (depth == 0), DONE, phase))
        new = State(phase, depth, state.length + (cls != C_PAD), stack)
        valid &= (phase != ERROR) & (new.length + self.need(new) <= self.max_tokens)
        bad = ~valid | (state.phase == ERROR)
        return State(jnp.where(bad, ERROR, new.phase), jnp.where(bad, state.depth, new.depth),
                     jnp.where(bad, state.length, new.length),
                     jnp.where(bad[..., None], state.stack, new.stack))

    def need(self, state: State) -> jax.Array:
        """Fewest tokens that complete a program from `state`."""
        open_ = jnp.arange(self.max_depth + 1) < state.depth[..., None]
        blocks = jnp.where(open_, jnp.asarray(_CLOSE_NEED)[state.stack], 0).sum(-1)
        return jnp.asarray(_PHASE_NEED)[state.phase] + blocks

    def allowed(self, state: State) -> jax.Array:
        """bool [..., VOCAB_SIZE]: the tokens that may come next (only PAD once done)."""
        tokens = jnp.arange(T.VOCAB_SIZE, dtype=jnp.int32)
        shape = state.phase.shape
        expanded = jax.tree.map(lambda x: jnp.expand_dims(x, len(shape)), state)
        return self.advance(expanded, jnp.broadcast_to(tokens, shape + tokens.shape)).phase != ERROR

    def run(self, ids) -> State:
        """The state after feeding token ids [..., n] from `init()` (ERROR if they are invalid)."""
        ids = jnp.asarray(ids, jnp.int32)
        def step(state, token):
            return self.advance(state, token), None
        final, _ = jax.lax.scan(step, self.init(ids.shape[:-1]), jnp.moveaxis(ids, -1, 0))
        return final


def done(state: State) -> jax.Array:
    """True once the final `}` has been read."""
    return state.phase == DONE


def failed(state: State) -> jax.Array:
    """True after a token that was not allowed."""
    return state.phase == ERROR


def straight_line(max_actions: int = 14, exclude: tuple[str, ...] = ()) -> Grammar:
    """`run{`, 1..max_actions actions, `}` (docs/spec.md §7)."""
    return Grammar(max_tokens=max_actions + 2, max_depth=0, exclude=exclude)
