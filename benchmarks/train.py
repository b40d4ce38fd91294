"""Training throughput on this host: kareljax's train step beside the same model in PyTorch.

    python benchmarks/train.py [--configs tiny,small] [--steps 10] [--repeats 3] [--skip-torch]
    python benchmarks/train.py --mfu        # GPU/TPU only: model FLOPs utilisation of `icml`

What is measured, per config (configs/<name>.py: model size, batch size, optimizer settings):

* kareljax: the state and the jitted step are built as `kareljax.train.loop.train` builds them
  (the configured mesh over every device, `state.init_state`, `make_train_step`: forward, backward,
  AdamW update, metrics). On a CPU host `platform.use_all_cpu_cores` makes one XLA device per core
  and the batch is split over them, as `kareljax train` does. The batch is one realistic batch of
  the config's dataset preset (fresh on-device data of step 0, [grad_accum, micro, L] with
  L = `layout(config.data).max_length`), fed again at every step.
* pytorch: `transformers.CodeGenForCausalLM` of the same size (n_embd = d_model, n_layer, n_head,
  n_inner = d_mlp, rotary_dim, vocab 77, no dropout), randomly initialised, float32, trained with
  `torch.optim.AdamW` (the config's lr, betas, eps, weight decay) on the same token arrays: labels
  are the tokens where the loss mask is set and -100 elsewhere, so the loss is the same mean
  next-token cross-entropy; no attention mask on either side (right padding under a causal mask).
  It runs in a child process with a separate virtual environment, made on first use
  (--torch-venv, default ~/.cache/kareljax-bench/torch-venv) by `pip install torch==2.13.0
  transformers`; `torch.set_num_threads` is the number of cores, so both frameworks use all cores.

Timing: each side runs 3 warm-up steps (compilation included on the JAX side), then `--repeats`
rounds of `--steps` steps timed together; the rounds of the two sides alternate (kareljax, then
PyTorch, then kareljax, ...) so that other work on a shared host slows both alike, and the best
round of each side counts. tokens_per_s = batch_size x seq_len / step_s (every token slot is
computed); real_tokens_per_s counts only the non-pad tokens of the batch. round_step_s lists every
round; load_avg_1m is the host's 1-minute load average before and after the rounds (this process
itself adds up to the core count).

Output: one JSON line per configuration: kareljax's `tokens_per_s`, the PyTorch model's `hf_tokens_per_s`
and `ratio_vs_hf` = tokens_per_s / hf_tokens_per_s. Progress goes to stderr.

--mfu (GPU/TPU backends only; refused on CPU) times the `icml` config (bfloat16 compute) and
reports model FLOPs utilisation: model FLOPs per step = batch x seq_len x
(6 x params + 12 x n_layers x d_model x seq_len) (the weight matmuls forward and backward, plus
the attention scores and weighted sums over the full T x T matrix, as PaLM's appendix counts them),
divided by the step time, the device count and the device's peak dense bf16 FLOP/s
(`PEAK_BF16_FLOPS`); on a device not in that table only the achieved TFLOP/s is reported.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Callable

from kareljax import platform

platform.configure()  # before anything imports jax, as `kareljax train` does

WARMUP_STEPS = 3
MFU_CONFIG = "icml"
TORCH_REQUIREMENTS = ("torch==2.13.0", "transformers")
DEFAULT_TORCH_VENV = pathlib.Path.home() / ".cache" / "kareljax-bench" / "torch-venv"
READY_MARKER = ".kareljax-bench-ready"

# Peak dense bfloat16 FLOP/s by device kind (the first matching fragment wins; checked in order).
PEAK_BF16_FLOPS = (
    ("h100 pcie", None),      # not in the table: a lower peak than the SXM part
    ("h100 nvl", None),
    ("h100", 989e12),         # H100 SXM ("NVIDIA H100 80GB HBM3")
    ("h200", 989e12),
    ("a100", 312e12),
    ("tpu v4", 275e12),
    ("tpu v5 lite", 197e12),  # v5e
    ("tpu v5e", 197e12),
)

Timer = Callable[[int], float]   # steps -> seconds those steps took


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def interleaved_rounds(timers: dict[str, Timer], steps: int, repeats: int
                       ) -> dict[str, list[float]]:
    """Seconds per step of every round of every timer, after WARMUP_STEPS steps of each; the
    timers take turns round by round."""
    for timer in timers.values():
        timer(WARMUP_STEPS)
    rounds: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeats):
        for name, timer in timers.items():
            rounds[name].append(timer(steps) / steps)
    return rounds


# --------------------------------------------------------------------------------------------
# kareljax


def load_config(name: str, overrides=()):
    from kareljax import config_files
    from kareljax.train import train_config

    config = config_files.load(name, list(overrides))
    train_config.validate(config)
    return config


def build_training(config):
    """(state, jitted step, mesh) built as `kareljax.train.loop.train` builds a fresh run."""
    import chex
    from kareljax.train import loop, optimizer
    from kareljax.train import mesh as mesh_lib
    from kareljax.train import state as state_lib
    from kareljax.train.step import make_train_step

    # make_train_step guards against retracing with chex, whose counter is shared by every step
    # built in this process; a new config's step is a new function, so start its count afresh.
    chex.clear_trace_counter()
    tc = config.train
    mesh = loop.build_mesh(tc)
    tx, lr = optimizer.make(tc)
    graphdef = state_lib.graphdef(config.model)
    _, shardings = state_lib.abstract_state(config.model, tx, mesh)
    state = state_lib.init_state(config.model, tx, tc.seed, shardings)
    step_fn = make_train_step(graphdef, tx, lr, shardings, mesh_lib.batch_sharding(mesh, 3, 1),
                              mesh_lib.replicated(mesh))
    return state, step_fn, mesh


def realistic_batch(config, mesh) -> dict:
    """Step 0's fresh batch of the config's data, [grad_accum, micro, L], on the mesh."""
    from kareljax.train import inputs

    return inputs.FreshBatches(config, mesh).next(0)


def describe_parallelism(devices: int, backend: str) -> str:
    where = ""
    if backend == "cpu":
        where = (" (one per core)" if devices == cpu_count() else "") + f" on {cpu_count()} cores"
    return (f"{devices} XLA {backend} device(s){where}, the batch split over them, "
            "as `kareljax train` runs")


def kareljax_side(config) -> tuple[Timer, dict, dict]:
    """(a timer of train steps, facts about the run, the batch as numpy [B, L] arrays)."""
    import jax
    import numpy as np

    state, step_fn, mesh = build_training(config)
    batch = realistic_batch(config, mesh)
    holder = {"state": state}

    def timer(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            holder["state"], metrics = step_fn(holder["state"], batch)
        jax.block_until_ready((holder["state"], metrics))
        return time.perf_counter() - start

    facts = {
        "params": int(sum(x.size for x in jax.tree.leaves(state["params"]))),
        "threads": describe_parallelism(mesh.devices.size, jax.default_backend()),
        "jax_version": jax.__version__,
    }
    flat = {k: np.asarray(v).reshape((-1,) + v.shape[2:]) for k, v in batch.items()}
    return timer, facts, flat


# --------------------------------------------------------------------------------------------
# PyTorch: a child process in its own venv. It reads a spec (one JSON line), then step counts
# (one per line), answering each with the seconds those steps took; at end of input it prints
# a summary. Only these JSON lines go to its stdout.

_TORCH_SCRIPT = r"""
import json, sys, time
spec = json.loads(sys.stdin.readline())
import torch, transformers
torch.set_num_threads(spec["threads"])
torch.manual_seed(0)
s = spec["size"]
config = transformers.CodeGenConfig(
    vocab_size=s["vocab_size"], n_positions=spec["n_positions"], n_ctx=spec["n_positions"],
    n_embd=s["d_model"], n_layer=s["n_layers"], n_head=s["n_heads"], n_inner=s["d_mlp"],
    rotary_dim=s["rotary_dim"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    layer_norm_epsilon=1e-5, activation_function="gelu_new", tie_word_embeddings=False,
    bos_token_id=None, eos_token_id=None)
model = transformers.CodeGenForCausalLM(config).train()
o = spec["optimizer"]
opt = torch.optim.AdamW(model.parameters(), lr=o["lr"], betas=(o["b1"], o["b2"]), eps=o["eps"],
                        weight_decay=o["weight_decay"])
tokens = torch.tensor(spec["tokens"], dtype=torch.long)
labels = torch.where(torch.tensor(spec["loss_mask"], dtype=torch.bool), tokens, -100)
loss = float("nan")
for line in sys.stdin:
    start = time.perf_counter()
    for _ in range(int(line)):
        out = model(input_ids=tokens, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    loss = out.loss.item()
    print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
print(json.dumps({
    "params": sum(p.numel() for p in model.parameters()), "loss": loss,
    "threads": torch.get_num_threads(),
    "attn_implementation": getattr(model.config, "_attn_implementation", None),
    "torch_version": torch.__version__, "torch_cuda": torch.version.cuda,
    "transformers_version": transformers.__version__}), flush=True)
"""


def ensure_torch_venv(venv: pathlib.Path, index_url: str | None) -> pathlib.Path:
    """The venv's python, after creating the venv and installing TORCH_REQUIREMENTS once.

    pip's own configuration applies (a find-links folder holding the CPU wheel of torch 2.13.0,
    say); `index_url` (e.g. https://download.pytorch.org/whl/cpu) is added as an extra index.
    """
    python = venv / "bin" / "python"
    if (venv / READY_MARKER).exists() and python.exists():
        return python
    log(f"creating the PyTorch venv {venv} (once)")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    command = [str(python), "-m", "pip", "install", "--quiet", *TORCH_REQUIREMENTS]
    if index_url:
        command += ["--extra-index-url", index_url]
    log("  " + " ".join(command))
    subprocess.run(command, check=True, stdout=sys.stderr)
    (venv / READY_MARKER).write_text(" ".join(TORCH_REQUIREMENTS) + "\n")
    return python


class TorchChild:
    """The PyTorch side, a child process driven line by line (see _TORCH_SCRIPT)."""

    def __init__(self, python: pathlib.Path, config, batch: dict):
        from kareljax.train import train_config

        size, tc = train_config.model_size(config.model), config.train
        spec = {
            "size": {k: getattr(size, k) for k in ("vocab_size", "d_model", "n_layers", "n_heads",
                                                   "d_mlp", "rotary_dim")},
            "n_positions": max(size.max_len, batch["tokens"].shape[1]),
            "optimizer": {k: tc[k] for k in ("lr", "b1", "b2", "eps", "weight_decay")},
            "tokens": batch["tokens"].tolist(), "loss_mask": batch["loss_mask"].tolist(),
            "threads": cpu_count(),
        }
        env = dict(os.environ, OMP_NUM_THREADS=str(cpu_count()), HF_HUB_OFFLINE="1",
                   TRANSFORMERS_OFFLINE="1")
        self.process = subprocess.Popen([str(python), "-c", _TORCH_SCRIPT], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        self._send(json.dumps(spec))

    def _send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def _receive(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise SystemExit(f"the PyTorch child exited ({self.process.returncode}); its "
                             "error is above")
        return json.loads(line)

    def timer(self, n: int) -> float:
        self._send(str(n))
        return self._receive()["seconds"]

    def finish(self) -> dict:
        """The child's summary (parameters, loss, versions), once it has exited."""
        self.process.stdin.close()
        summary = self._receive()
        self.process.wait()
        if summary["torch_cuda"] is not None:
            log(f"  note: the venv's torch is a CUDA build ({summary['torch_version']}); it ran "
                "on the CPU all the same")
        return summary


# --------------------------------------------------------------------------------------------
# The CPU comparison


def throughput_record(name: str, framework: str, config, batch: dict, rounds: list[float],
                      facts: dict, loads: list[float]) -> dict:
    batch_size, seq_len = batch["tokens"].shape
    step_s = min(rounds)
    return {
        "config": name, "framework": framework, "params": facts.pop("params"),
        "batch_size": int(batch_size), "seq_len": int(seq_len),
        "tokens_per_s": round(batch_size * seq_len / step_s, 1),
        "real_tokens_per_s": round(int(batch["valid"].sum()) / step_s, 1),
        "step_s": round(step_s, 5), "round_step_s": [round(r, 4) for r in rounds],
        "device": "cpu", "cpu_count": cpu_count(), "dtype": config.model.dtype,
        "load_avg_1m": loads, **facts,
    }


def compare(name: str, steps: int, repeats: int, torch_python: pathlib.Path | None) -> None:
    config = load_config(name)
    log(f"{name}: model {config.model.size}, batch {config.train.batch_size}; building")
    jax_timer, jax_facts, batch = kareljax_side(config)
    timers = {"kareljax": jax_timer}
    child = None
    if torch_python is not None:
        child = TorchChild(torch_python, config, batch)
        timers["pytorch"] = child.timer
    log(f"  {' and '.join(timers)}: {WARMUP_STEPS} warm-up steps (and compiling), then "
        f"{repeats} alternating rounds of {steps} steps")
    before = load_avg()
    rounds = interleaved_rounds(timers, steps, repeats)
    loads = [before, load_avg()]
    ours = throughput_record(name, "kareljax", config, batch, rounds["kareljax"], jax_facts, loads)
    line = {**ours, "hf_tokens_per_s": None, "hf_step_s": None, "ratio_vs_hf": None}
    if child is not None:
        theirs = throughput_record(name, "pytorch", config, batch, rounds["pytorch"],
                                   child.finish(), loads)
        line.update(hf_tokens_per_s=theirs["tokens_per_s"], hf_step_s=theirs["step_s"],
                    hf_round_step_s=theirs["round_step_s"],
                    ratio_vs_hf=round(ours["tokens_per_s"] / theirs["tokens_per_s"], 3),
                    hf=theirs, threads="both frameworks use all cores")
    emit(line)  # one line per configuration


# --------------------------------------------------------------------------------------------
# MFU on an accelerator


def peak_bf16_flops(device_kind: str) -> float | None:
    kind = device_kind.lower()
    for fragment, peak in PEAK_BF16_FLOPS:
        if fragment in kind:
            return peak
    return None


def model_flops_per_step(params: int, n_layers: int, d_model: int, batch_size: int,
                         seq_len: int) -> float:
    """6 N per token for the weights (forward + backward), plus 12 n_layers d_model T per token
    for attention's QK^T and AV over the full T x T matrix (forward + backward)."""
    per_token = 6 * params + 12 * n_layers * d_model * seq_len
    return float(batch_size * seq_len * per_token)


def measure_mfu(steps: int, repeats: int) -> None:
    import jax
    from kareljax.train import train_config

    backend = jax.default_backend()
    if backend == "cpu":
        raise SystemExit("--mfu needs a GPU or TPU backend; this host's JAX backend is the CPU")
    config = load_config(MFU_CONFIG, ["model.dtype=bfloat16"])
    kind, devices = jax.devices()[0].device_kind, jax.device_count()
    log(f"{MFU_CONFIG}: batch {config.train.batch_size}, bfloat16, {devices} x {kind}")
    timer, facts, batch = kareljax_side(config)
    step_s = min(interleaved_rounds({"kareljax": timer}, steps, repeats)["kareljax"])
    size = train_config.model_size(config.model)
    batch_size, seq_len = batch["tokens"].shape
    flops = model_flops_per_step(facts["params"], size.n_layers, size.d_model, batch_size,
                                 seq_len)
    achieved = flops / step_s / devices
    record = {
        "config": MFU_CONFIG, "framework": "kareljax", "params": facts["params"],
        "batch_size": int(batch_size), "seq_len": int(seq_len), "dtype": "bfloat16",
        "tokens_per_s": round(batch_size * seq_len / step_s, 1), "step_s": round(step_s, 5),
        "device": backend, "device_kind": kind, "devices": devices,
        "model_flops_per_step": flops, "achieved_tflops_per_device": round(achieved / 1e12, 2),
    }
    peak = peak_bf16_flops(kind)
    if peak is not None:
        record["peak_tflops_per_device"] = peak / 1e12
        record["mfu"] = round(achieved / peak, 4)
    emit(record)


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,small",
                        help="comma-separated config names (configs/<name>.py)")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (the best counts)")
    parser.add_argument("--skip-torch", action="store_true", help="time kareljax only")
    parser.add_argument("--torch-venv", type=pathlib.Path, default=DEFAULT_TORCH_VENV)
    parser.add_argument("--torch-index-url", default=None,
                        help="an extra pip index for torch, e.g. "
                             "https://download.pytorch.org/whl/cpu")
    parser.add_argument("--mfu", action="store_true",
                        help=f"GPU/TPU only: MFU of the {MFU_CONFIG} config in bfloat16 "
                             "(no CPU comparison)")
    args = parser.parse_args()
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be at least 1")
    start = time.perf_counter()
    if args.mfu:
        measure_mfu(args.steps, args.repeats)
    else:
        torch_python = (None if args.skip_torch
                        else ensure_torch_venv(args.torch_venv, args.torch_index_url))
        for name in filter(None, (n.strip() for n in args.configs.split(","))):
            compare(name, args.steps, args.repeats, torch_python)
    log(f"benchmark wall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
