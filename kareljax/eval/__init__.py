"""Scoring decoded programs (docs/spec.md §7): used by training's periodic evaluation, `kareljax eval` and
the probe collection."""
