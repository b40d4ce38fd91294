"""Probing the LM's hidden states: collection (hidden states, tokens, traces), alignment and labels,
probe models, the vmapped scan over checkpoints, and the report."""
