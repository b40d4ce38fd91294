"""Multi-host start-up: `jax.distributed.initialize()` when the environment asks for it.

Every process of a multi-host job runs the same `kareljax train` command. The environment says it
is one of several:

- `KARELJAX_DISTRIBUTED=1`: JAX detects the cluster itself (Cloud TPU pods, SLURM, Open MPI, GKE).
- `JAX_COORDINATOR_ADDRESS=host:port` with `JAX_NUM_PROCESSES=N` and `JAX_PROCESS_ID=i`: an explicit
  cluster (process 0 runs the coordinator at that address), e.g. two processes on localhost.

Otherwise the run is single-process. This must happen before JAX touches a device.
"""
from __future__ import annotations

import os

import jax

ENV_FLAG = "KARELJAX_DISTRIBUTED"


def requested(environ=None) -> bool:
    environ = os.environ if environ is None else environ
    flag = environ.get(ENV_FLAG, "") not in ("", "0")
    return flag or bool(environ.get("JAX_COORDINATOR_ADDRESS"))


def maybe_initialize(environ=None) -> bool:
    """Initializes jax.distributed if the environment asks and it is not done yet; returns whether
    this is a multi-process run."""
    environ = os.environ if environ is None else environ
    if requested(environ) and not jax.distributed.is_initialized():
        kwargs = {}
        if environ.get("JAX_NUM_PROCESSES"):
            kwargs["num_processes"] = int(environ["JAX_NUM_PROCESSES"])
        if environ.get("JAX_PROCESS_ID"):
            kwargs["process_id"] = int(environ["JAX_PROCESS_ID"])
        jax.distributed.initialize(**kwargs)
    return jax.process_count() > 1
