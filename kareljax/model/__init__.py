"""The LM (docs/spec.md §6): a CodeGen-style Flax NNX transformer, its named sizes and helpers."""
from kareljax.model.sizes import SIZES, ModelSize, build_model, count_params
from kareljax.model.transformer import (KVCache, Transformer, forward_with_states, hidden_states,
                                        init_cache, positions_from_mask)

__all__ = ["SIZES", "ModelSize", "build_model", "count_params", "KVCache", "Transformer",
           "forward_with_states", "hidden_states", "init_cache", "positions_from_mask"]
