#!/usr/bin/env bash
# The prepared GPU check of issue 7 point 3, one call on a lent GPU machine (or any GPU host):
#   1. env.txt      Python, JAX, its backend and devices (nvidia-smi.txt: the GPU, last)
#   2. mfu.jsonl    the icml train step's model FLOPs utilisation (benchmarks/train.py --mfu)
#   3. metrics.jsonl, eval_test.json
#                   a short run of configs/gpu_mid.py (a ~25 M-parameter model on the paper's 8x8
#                   world): loss and val accuracy every 250 steps, then the test split
#   status.txt      each step's exit status and seconds
# Every step has its own time limit (580 s together at most, under the device tool's 600 s a
# command), and a failing step does not stop the next.
#
#   benchmarks/device_check.sh [--out DIR] [--train-seconds N] [--smoke] [--dry-run]
#
# --out DIR            where the files go (default $OUT if set, else /tmp/kareljax-device-check)
# --train-seconds N    the training run's limit (default 270); the run stops there if unfinished
# --smoke              CPU-sized, to try the script anywhere: tiny model, a few steps, no MFU
# --dry-run            print the commands instead of running them
#
# Packages: with wheels in .whl/ (or the folder $KARELJAX_WHEELS; benchmarks/device_wheels.txt
# says what goes in it and how to fetch it), those are installed into /tmp/kareljax-site first;
# otherwise the Python found as $PYTHON (default python3) must have kareljax's requirements.
set -euo pipefail

PROG=device_check.sh
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# die, shq, shq_all: shared with the launch scripts
# shellcheck source=launch/common.sh
source "$REPO_ROOT/launch/common.sh"
OUT_DIR=${OUT:-/tmp/kareljax-device-check}
TRAIN_SECONDS=270
SMOKE=0
DRY_RUN=0
PYTHON=${PYTHON:-python3}
WHEELS=${KARELJAX_WHEELS:-.whl}    # wheels to install first, if any

while (($#)); do
  case $1 in
    --out) (($# >= 2)) || die "--out needs a value"; OUT_DIR=$2; shift 2 ;;
    --train-seconds)
      (($# >= 2)) && [[ $2 =~ ^[1-9][0-9]*$ ]] || die "--train-seconds needs a number of seconds"
      TRAIN_SECONDS=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

WORKDIR=/tmp/kareljax-device-check-run
CONFIG=configs/gpu_mid.py
OVERRIDES=(--config.data.data_dir=/tmp/kareljax-device-check-data)
if ((SMOKE)); then
  OVERRIDES+=(--config.model.d_model=64 --config.model.n_layers=2 --config.model.n_heads=1
    --config.model.d_mlp=256 --config.model.dtype=float32 --config.train.batch_size=8
    --config.train.num_steps=20 --config.train.warmup_steps=2 --config.train.eval_every=10
    --config.train.eval_examples=16 --config.train.checkpoint_every=10
    --config.train.keep_latest_every=10 --config.train.log_every=5 --config.data.num_train=100
    --config.data.num_val=50 --config.data.num_test=50)
fi

# step NAME SECONDS OUTPUT CMD...: runs CMD under a time limit, its stdout to the file OUTPUT
# ('-': the terminal), and records its exit status and seconds; never fails the script.
step() {
  local name=$1 seconds=$2 output=$3 start status
  shift 3
  if ((DRY_RUN)); then
    printf '+ %s' "$(shq_all timeout "$seconds" "$@")"
    [[ $output == - ]] || printf ' > %s' "$(shq "$output")"
    printf '\n'
    return 0
  fi
  printf '\n== %s (limit %s s)\n' "$name" "$seconds" >&2
  [[ $output == - ]] && output=/dev/stdout
  start=$SECONDS
  set +e
  timeout --signal=INT --kill-after=30 "$seconds" "$@" >"$output"
  status=$?
  set -e
  printf '%s exit=%s seconds=%s\n' "$name" "$status" "$((SECONDS - start))" >>"$OUT_DIR/status.txt"
  return 0
}

cd "$REPO_ROOT"
if ((!DRY_RUN)); then
  mkdir -p "$OUT_DIR"
  : >"$OUT_DIR/status.txt"
  rm -rf "$WORKDIR"
fi
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  step wheels 30 - "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/kareljax-site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/kareljax-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}   # kareljax from this checkout, no install
export PYTHONUNBUFFERED=1

ENV_PY='import platform, jax, flax, optax, orbax.checkpoint as ocp
print("python", platform.python_version(), "| jax", jax.__version__, "| flax", flax.__version__,
      "| optax", optax.__version__, "| orbax", ocp.__version__)
print("backend", jax.default_backend(), "|", jax.device_count(), "x", jax.devices()[0].device_kind)'
step env 40 "$OUT_DIR/env.txt" "$PYTHON" -c "$ENV_PY"
if ((!SMOKE)); then
  step mfu 150 "$OUT_DIR/mfu.jsonl" "$PYTHON" benchmarks/train.py --mfu --steps 10 --repeats 3
fi
step train "$TRAIN_SECONDS" - "$PYTHON" -m kareljax train --config "$CONFIG" --workdir "$WORKDIR" \
  --no-progress "${OVERRIDES[@]}"
if ((!DRY_RUN)) && [[ -f $WORKDIR/metrics.jsonl ]]; then cp "$WORKDIR/metrics.jsonl" "$OUT_DIR/"; fi
step eval 80 "$OUT_DIR/eval_test.json" "$PYTHON" -m kareljax eval --workdir "$WORKDIR" --split test
step gpu 10 "$OUT_DIR/nvidia-smi.txt" nvidia-smi
if ((!DRY_RUN)); then
  cat "$OUT_DIR/status.txt" >&2
fi
