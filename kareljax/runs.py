"""A run directory from Python: `kareljax.load_run(workdir)`.

    run = kareljax.load_run("runs/quick")
    run.config, run.checkpoints()               # the recorded config; steps with a checkpoint
    model = run.model()                         # the newest checkpoint (run.model(0): untrained)
    specs = run.specs("test", limit=8)          # stored records: program, inputs, outputs, ...
    programs = run.decode(model, specs)         # the model's programs, token ids from `run{`
    print(run.program_text(programs[0]))
    states = run.hidden_states(model, specs, programs)   # [N, P, d], the state producing each token
    summary, results = run.evaluate(model, specs)        # the accuracy `kareljax eval` reports

The same library calls the commands make, without the command line.
"""
from __future__ import annotations

import dataclasses
import os

import ml_collections


@dataclasses.dataclass(frozen=True)
class Run:
    workdir: str
    config: ml_collections.ConfigDict

    def checkpoints(self) -> list[int]:
        """Steps with a readable checkpoint, oldest first."""
        from kareljax.train import load
        return load.checkpoint_steps(self.workdir)

    def model(self, step: int | None = None):
        """The model at checkpoint `step` (default: the newest; 0: the untrained model from the
        run's seed, the probes' baseline), on one device."""
        from kareljax.train import load
        if step == 0:
            return load.untrained_model(self.workdir)
        return load.load_model(self.workdir, step)[1]

    def specs(self, split: str = "test", limit: int | None = None, start: int = 0) -> dict:
        """Records `start` .. `start + limit` of a split of the run's dataset (built if needed)."""
        import numpy as np
        from kareljax.data import pipeline
        from kareljax.train import inputs
        inputs.ensure_dataset(self.config.data, log=lambda *a, **k: None)
        reader = pipeline.DatasetReader(self.config.data, split)
        stop = len(reader) if limit is None else min(len(reader), start + limit)
        return reader.read(np.arange(start, stop))

    def decode(self, model, specs: dict, batch_size: int = 256, forced: bool = False):
        """Program token ids [N, max_program_tokens] from `run{`, greedy and grammar-constrained
        (`forced`: the reference programs fed through the model instead). An execution-order
        run writes no programs: its programs are the references, `specs["program"]`."""
        from kareljax.data import dataset_config
        from kareljax.eval import evaluate
        if dataset_config.layout(self.config.data).execution:
            raise ValueError(f"{self.workdir} is an execution-order run (data.order="
                             "'execution'): the model reads the program and writes the outputs, "
                             "so there are no programs to decode; its programs are "
                             "specs['program'], and evaluate() scores its outputs")
        return evaluate.decode_records(model, self.config.data, specs, batch_size, forced)

    def evaluate(self, model, specs: dict, batch_size: int = 256) -> tuple[dict, dict]:
        """(summary, per-program results) as `kareljax eval` computes them."""
        from kareljax.eval import evaluate
        return evaluate.evaluate(model, self.config.data, specs, batch_size)

    @staticmethod
    def program_text(program_ids) -> str:
        """A program's text from its token ids (`run{ ... }`, PAD after)."""
        from kareljax.data import tokens
        from kareljax.karel import printer
        return printer.to_text(tokens.decode_program(program_ids))

    def hidden_states(self, model, specs: dict, programs, per_layer: bool = False):
        """The hidden state producing each program token: [N, P, d] (the mean over the
        residual stream, as `collect` keeps it) or [layers, N, P, d] with `per_layer`.
        `programs`: token ids from `run{` (`decode`'s); the state of token j sits at the
        position before it."""
        import numpy as np
        from kareljax.data import dataset_config
        from kareljax.data.batches import example_tokens
        from kareljax.probe import collect
        layout = dataset_config.layout(self.config.data)
        prompts = example_tokens(layout, specs["inputs"], specs["outputs"],
                                 specs["program"])[:, :layout.prompt_length]
        return np.asarray(collect.producing_states(model, prompts, np.asarray(programs)[:, 1:],
                                                   per_layer))


def load_run(workdir: str | os.PathLike) -> Run:
    """The run in `workdir` (its recorded config.json); `RunNotFoundError` if there is none."""
    from kareljax import platform
    platform.cpu_only_without_accelerator()     # as the command line does, before JAX starts
    from kareljax.train import load
    workdir = os.fspath(workdir)
    return Run(workdir, load.run_config(workdir))
