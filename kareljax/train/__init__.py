"""Training (docs/spec.md §6): mesh and sharding, optimizer, train step, checkpoints, metrics, the loop."""
from kareljax.train.loop import NonFiniteLossError, TrainResult, train

__all__ = ["NonFiniteLossError", "TrainResult", "train"]
