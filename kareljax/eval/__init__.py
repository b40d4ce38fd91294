"""Scoring decoded programs (SPEC §7): used by training's periodic evaluation, `kareljax eval` and
the probe collection."""
