"""The micro-size pipeline run that CI's end-to-end tests share (`reproduce`, the notebook): the
tiny config on 300 / 100 / 100 specs, 10 training steps, one alternative, 4-step probes."""
from __future__ import annotations

import os


def micro_overrides(data_dir: str | os.PathLike) -> list[str]:
    """`--config.*` flags of the micro run, with its dataset under `data_dir`."""
    return [f"--config.data.data_dir={data_dir}", "--config.data.num_train=300",
            "--config.data.num_val=100", "--config.data.num_test=100",
            "--config.train.num_steps=10", "--config.train.warmup_steps=1",
            "--config.train.checkpoint_every=10", "--config.train.keep_latest_every=10",
            "--config.probe.collect.alts=0", "--config.probe.collect.train_limit=100",
            "--config.probe.scan.fit.steps=4", "--config.probe.scan.fit.eval_every=2"]
