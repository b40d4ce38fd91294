"""AdamW and the learning-rate schedules of docs/spec.md §6.

`schedule(train)(step)` is the learning rate of the update made at optimizer step `step`
(0-based; the first update has lr 0 when there is a warmup, as in optax and HF's schedulers).
"""
from __future__ import annotations

import ml_collections
import optax


def schedule(train: ml_collections.ConfigDict) -> optax.Schedule:
    """'linear': 0 -> lr over warmup_steps, then linearly to 0 at `steps` (the intended one).
    'as_run': 0 -> lr over round(as_run_warmup_fraction * steps), then constant (what the original
    run did: its warmup took 48,000 of 80,000 steps and the lr never decayed)."""
    if train.schedule == "linear":
        warmup, decay = train.warmup_steps, train.num_steps - train.warmup_steps
        parts = []
        if warmup:
            parts.append(optax.linear_schedule(0.0, train.lr, warmup))
        parts.append(optax.linear_schedule(train.lr, 0.0, max(decay, 1)))
        return parts[0] if len(parts) == 1 else optax.join_schedules(parts, [warmup])
    if train.schedule == "as_run":
        warmup = max(1, round(train.as_run_warmup_fraction * train.num_steps))
        return optax.join_schedules([optax.linear_schedule(0.0, train.lr, warmup),
                                     optax.constant_schedule(train.lr)], [warmup])
    raise ValueError(f"unknown schedule {train.schedule!r}")


def make(train: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """(AdamW with the config's betas, eps and decoupled weight decay, no clipping; the
    schedule)."""
    lr = schedule(train)
    tx = optax.adamw(lr, b1=train.b1, b2=train.b2, eps=train.eps,
                     weight_decay=train.weight_decay)
    return tx, lr
