"""Writes launch/kareljax_colab.ipynb (nbformat 4) from the cells below.

    python launch/make_colab_notebook.py            # rewrite the notebook
    python launch/make_colab_notebook.py --check    # exit 1 if the notebook differs from this script

Edit the cells here, not the .ipynb, so the notebook stays valid JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "kareljax_colab.ipynb")


def md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": _lines(text)}


def code(text: str, tags: list[str] | None = None) -> dict:
    metadata = {"tags": tags} if tags else {}
    return {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [],
            "source": _lines(text)}


def _lines(text: str) -> list[str]:
    lines = text.strip("\n").split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


CELLS = [
    md("""
# kareljax on Colab

kareljax is a JAX reimplementation of Jin & Rinard, *Emergent Representations
of Program Semantics in Language Models Trained on Programs* (ICML 2024): a transformer trained on
Karel programs, and probes reading the robot's state from its hidden states.

This notebook installs kareljax, runs the whole pipeline with the README's `quick` config (training,
evaluation, collection, probe scan, report: about 7 minutes on a 2-core CPU, less on an
accelerator) and shows the report.
The last section loads a paper-scale run made on a TPU VM or GPU host (`launch/tpu_vm.sh`,
`launch/gpu_host.sh`) from Google Cloud Storage.

Any runtime works (Runtime → Change runtime type: CPU, GPU or TPU); the installer picks the matching
JAX build. kareljax runs as a command (`!kareljax ...`), in its own processes, so the notebook never
needs a restart after the install.
"""),
    code("""
# Where kareljax comes from: set this to the repository (your fork or the project's).
REPO_URL = "https://github.com/<you>/kareljax"
REF = "main"                     # branch or tag
CONFIG = "configs/quick.py"      # the README's main job: 0.8 M parameters, 2,400 steps
OVERRIDES = ""                   # extra config flags, e.g. "--config.train.num_steps=400"
RUN = "runs/quick"               # the run directory (inside the clone)
JAX_VERSION = "0.10.2"
INSTALL = True                   # False: use the kareljax already installed in this kernel's Python
BUCKET = ""                      # last section: a run in gs://BUCKET/runs/RUN_NAME ("" skips it)
ACCEL_1H = False                 # the one-accelerator-hour section: True runs it (TPU/GPU runtime)
RUN_NAME = "kj-icml"
""", tags=["parameters"]),
    md("""
## Install

Clones the repository (unless the notebook already runs in a kareljax checkout) and installs it with
`pip install -r requirements.txt -e .` plus the JAX build for this runtime: `jax[tpu]` (from the
libtpu releases index) on a TPU runtime, `jax[cuda12]` on a GPU runtime, the CPU build otherwise.
"""),
    code("""
import glob
import os
import shlex
import shutil
import subprocess


def in_kareljax_checkout(path="."):
    pyproject = os.path.join(path, "pyproject.toml")
    return os.path.isfile(pyproject) and 'name = "kareljax"' in open(pyproject).read()


def check_exit(what):
    # Raises if the last `!command` failed (IPython keeps its exit status in `_exit_code`).
    status = globals().get("_exit_code", 0)
    if status:
        raise RuntimeError(f"{what} failed with exit status {status}; its output is above")


if not in_kareljax_checkout():
    if not os.path.isdir("kareljax"):
        if "<you>" in REPO_URL:
            raise ValueError("Set REPO_URL (first code cell) to the kareljax git repository.")
        subprocess.run(["git", "clone", "--depth", "1", "--branch", REF, REPO_URL, "kareljax"],
                       check=True)
    os.chdir("kareljax")
print("working in", os.getcwd())

on_tpu = bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*")
              or os.environ.get("COLAB_TPU_ADDR"))
on_gpu = shutil.which("nvidia-smi") is not None
if on_tpu:
    JAX_SPEC = [f"jax[tpu]=={JAX_VERSION}", "-f",
                "https://storage.googleapis.com/jax-releases/libtpu_releases.html"]
elif on_gpu:
    JAX_SPEC = [f"jax[cuda12]=={JAX_VERSION}"]
else:
    JAX_SPEC = []
JAX_SPEC = " ".join(shlex.quote(s) for s in JAX_SPEC)
print("runtime:", "TPU" if on_tpu else "GPU" if on_gpu else "CPU", "| extra:", JAX_SPEC or "none")
"""),
    code("""
if INSTALL:
    %pip install -q -r requirements.txt -e . {JAX_SPEC}
else:
    print("INSTALL = False: using the kareljax installed in this kernel's Python")
"""),
    md("""
## Which devices does JAX see?

A TPU runtime should list `TpuDevice`s, a GPU runtime `CudaDevice`s (backend `gpu`); `cpu` means
no accelerator (fine for the quick config).
"""),
    code("""
!python -c "import jax; print('jax', jax.__version__, '| backend:', jax.default_backend()); print(jax.devices())"
check_exit("importing JAX")
"""),
    md("""
## Run the pipeline

`kareljax reproduce` runs every stage in `RUN`: dataset, training (with checkpoints), evaluation,
collection of hidden states and traces, the probe scan over every checkpoint, and the report. Run
the cell again and it continues where it stopped.
"""),
    code("""
!kareljax reproduce --config {CONFIG} --workdir {RUN} {OVERRIDES}
check_exit("kareljax reproduce")
"""),
    md("""
## The report

`RUN/report/report.md` and its PNG figures. The markdown's image links are relative to the report
folder, so the figures are shown after it.
"""),
    code("""
import re
from IPython.display import Image, Markdown, display


def show_report(run_dir):
    report_dir = os.path.join(run_dir, "report")
    with open(os.path.join(report_dir, "report.md")) as f:
        text = f.read()
    text = re.sub(r"!\\[([^\\]]*)\\]\\(([^)]*)\\)", r"*(figure `\\2`: below)*", text)
    display(Markdown(text))
    for png in sorted(glob.glob(os.path.join(report_dir, "*.png"))):
        display(Markdown(f"**{os.path.basename(png)}**"))
        display(Image(filename=png))


show_report(RUN)
"""),
    md("""
## The run from Python

`kareljax.load_run` opens a run directory without the command line: its config, checkpoints, the
model at any step (0: untrained), the dataset's specs, the model's programs for them and the hidden
states that produced each program token (the probes' inputs).
"""),
    code("""
import kareljax

run = kareljax.load_run(RUN)
model = run.model()                          # the newest checkpoint
specs = run.specs("test", limit=4)
programs = run.decode(model, specs)
for ids in programs:
    print(run.program_text(ids).replace("\\n", " "))
states = run.hidden_states(model, specs, programs)
print("checkpoints:", run.checkpoints(), "| hidden states [specs, tokens, d_model]:", states.shape)
"""),
    md("""
## One accelerator-hour on a TPU or GPU runtime

`configs/accel_1h.py` is the science run sized to about an hour on one TPU v5e chip (Colab's TPU
runtime) or one H100: the paper's 8x8 world and training programs (lengths 6-10, evaluated on
1-10), a 25 M-parameter model, probes at the paper's budget. `kareljax plan` compiled every stage
of it for both chips ahead of time (docs/scale.md). Set `ACCEL_1H = True` in the first code cell on
a TPU or GPU runtime; the run continues where it stopped if the runtime is recycled.
"""),
    code("""
from kareljax.platform import has_accelerator

ACCEL_RUN = "runs/accel_1h"
if not ACCEL_1H:
    print("ACCEL_1H is False (first code cell): the one-accelerator-hour run is skipped.")
elif not has_accelerator():
    print("This runtime has no TPU or GPU: configs/accel_1h.py would take days here.")
else:
    !kareljax reproduce --config configs/accel_1h.py --workdir {ACCEL_RUN}
    check_exit("kareljax reproduce (accel_1h)")
    show_report(ACCEL_RUN)
"""),
    md("""
## A run from Google Cloud Storage

Set `BUCKET` and `RUN_NAME` in the first code cell; with `BUCKET` empty the cells below do nothing.
`launch/tpu_vm.sh` keeps a run in `gs://BUCKET/runs/NAME` (`launch/gpu_host.sh sync` copies one
there). To look at it here:

1. Sign in: `google.colab.auth.authenticate_user()` (outside Colab: `gcloud auth login`, and
   `gcloud auth application-default login`).
2. Copy the run: `gsutil -m rsync -r gs://BUCKET/runs/NAME runs/NAME`. At paper size each checkpoint
   is ~3 GB (float32 parameters and AdamW moments of ~252 M parameters) and there are 40 of them
   plus rolling ones (~127 GB in all), more than a Colab disk holds: copy the run without
   `checkpoints/` and, if you want to collect here, only the steps you need.
3. `kareljax collect` (needs the checkpoints and the dataset), `kareljax scan`, `kareljax report`.
   If the VM already ran them (`launch/tpu_vm.sh post`), `collect/`, `results.jsonl` and `report/`
   came with the copy and the report can be shown straight away.
"""),
    code("""
GCS_RUN = f"gs://{BUCKET}/runs/{RUN_NAME}"
LOCAL_RUN = f"runs/{RUN_NAME}"
if not BUCKET:
    print("BUCKET is empty (first code cell): no run is loaded from Google Cloud Storage.")
else:
    try:
        from google.colab import auth
        auth.authenticate_user()
    except ImportError:
        print("Not on Colab: sign in with `gcloud auth login` and "
              "`gcloud auth application-default login` first.")
"""),
    code("""
# Everything but the checkpoints: config, metrics, TensorBoard logs, evaluation, collections,
# probe results and the report when they exist.
if BUCKET:
    !mkdir -p {LOCAL_RUN}
    !gsutil -m rsync -r -x '(corrupt_|nonfinite_)?checkpoints/.*' {GCS_RUN} {LOCAL_RUN}
    check_exit("gsutil rsync")
    !ls {LOCAL_RUN}
"""),
    code("""
# Optional: collect, scan and report here, on a few checkpoints (76,000 is the paper's probe
# checkpoint; step 0, the untrained model, needs no checkpoint; [] skips this cell). The dataset is
# built first (about a minute); pass the run's --config.data.* overrides if it had any.
STEPS = [76000]
if BUCKET and STEPS:
    !mkdir -p {LOCAL_RUN}/checkpoints
    !gsutil -m rsync {GCS_RUN}/checkpoints {LOCAL_RUN}/checkpoints
    for step in STEPS:
        !mkdir -p {LOCAL_RUN}/checkpoints/{step}
        !gsutil -m rsync -r {GCS_RUN}/checkpoints/{step} {LOCAL_RUN}/checkpoints/{step}
        check_exit(f"copying checkpoint {step}")
    STEP_LIST = ",".join(str(s) for s in [0] + STEPS)
    !kareljax data build --config configs/icml.py
    check_exit("kareljax data build")
    !kareljax collect --workdir {LOCAL_RUN} --steps {STEP_LIST}
    check_exit("kareljax collect")
    !kareljax scan --workdir {LOCAL_RUN} --profile paper
    check_exit("kareljax scan")
    !kareljax report --workdir {LOCAL_RUN}
    check_exit("kareljax report")
"""),
    code("""
if BUCKET:
    show_report(LOCAL_RUN)
"""),
]


def notebook() -> dict:
    return {
        "cells": CELLS,
        "metadata": {
            "accelerator": "GPU",
            "colab": {"name": "kareljax_colab.ipynb", "provenance": []},
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render() -> str:
    nb = notebook()
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i:02d}"
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        with open(OUTPUT) as f:
            same = f.read() == text
        print(f"{OUTPUT}: {'up to date' if same else 'differs from make_colab_notebook.py'}")
        return 0 if same else 1
    with open(OUTPUT, "w") as f:
        f.write(text)
    print(f"wrote {OUTPUT} ({len(CELLS)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
