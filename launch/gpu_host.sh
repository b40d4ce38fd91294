#!/usr/bin/env bash
# Run kareljax on one GPU host (this machine): make a virtual environment with jax[cuda12], then
# `kareljax reproduce` or any stage. `launch/gpu_host.sh --help` for the details; `--dry-run`
# prints every command instead of running it.
set -euo pipefail

PROG=${0##*/}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=launch/common.sh
source "$SCRIPT_DIR/common.sh"

JAX_VERSION=0.10.2

CMD=""
CONFIG="configs/icml.py"
WORKDIR=""
VENV=".venv"
PYTHON="python3"
BUCKET=""
PROBE_PROFILE="paper"
DRY_RUN=0
EXTRA=()

usage() {
  cat <<EOF
Usage: $PROG COMMAND [options] [-- ARGS...]

Runs kareljax on this machine's GPU(s), from the repository root ($REPO_ROOT).

Commands:
  setup       make the virtual environment (--venv) and pip install -r requirements.txt -e .
              jax[cuda12]==$JAX_VERSION (needs Python >= 3.11 and an NVIDIA driver for CUDA 12)
  check       nvidia-smi, and JAX's backend and devices
  reproduce   kareljax reproduce --config CONFIG --workdir WORKDIR; ARGS after -- are config
              overrides (--config.train.grad_accum=2 ...)
  paper       the stages one by one with the paper's probe settings: train (ARGS as overrides),
              eval --split test, collect --steps all, scan --profile $PROBE_PROFILE, report
  stage       any kareljax command: $PROG stage -- eval --workdir runs/icml --split test
  sync        gsutil -m rsync -r WORKDIR gs://BUCKET/runs/NAME (NAME: the workdir's last part)
  all         setup, check, reproduce

Options (--opt VALUE or --opt=VALUE):
  --config FILE         default $CONFIG
  --workdir DIR         default runs/<config name> (runs/icml)
  --venv DIR            default $VENV (relative to the repository root)
  --python PY           the interpreter for the venv (default $PYTHON; must be >= 3.11)
  --bucket gs://BUCKET  for sync
  --probe-profile P     paper: kareljax scan profile, paper (default) or cpu
  --dry-run             print every command instead of running it
  -h, --help            this text

A long run outlives a terminal: nohup $PROG all > icml.log 2>&1 &
Run again, every stage continues where it stopped (training resumes from its newest checkpoint).
EOF
}


set_opt() {
  case $1 in
    --config) CONFIG=$2 ;;
    --workdir) WORKDIR=$2 ;;
    --venv) VENV=$2 ;;
    --python) PYTHON=$2 ;;
    --bucket) BUCKET=$2 ;;
    --probe-profile) PROBE_PROFILE=$2 ;;
    *) die "unknown option $1 (see $PROG --help)" ;;
  esac
}

parse_args() {
  while (($#)); do
    case $1 in
      --) shift; EXTRA=("$@"); break ;;
      -h|--help) usage; exit 0 ;;
      --dry-run) DRY_RUN=1; shift ;;
      --*=*) set_opt "${1%%=*}" "${1#*=}"; shift ;;
      --*) (($# >= 2)) || die "$1 needs a value"; set_opt "$1" "$2"; shift 2 ;;
      *)
        [[ -z $CMD ]] || die "unexpected argument '$1' (kareljax arguments go after --)"
        CMD=$1; shift ;;
    esac
  done
  [[ -n $CMD ]] || { usage >&2; exit 2; }
  check_extra "${EXTRA[@]+"${EXTRA[@]}"}"
  case $CMD in
    setup|check|reproduce|paper|stage|sync|all) ;;
    *) die "unknown command '$CMD' (see $PROG --help)" ;;
  esac
  case $PROBE_PROFILE in paper|cpu) ;; *) die "--probe-profile: paper or cpu" ;; esac
  if [[ -z $WORKDIR ]]; then
    local base=${CONFIG##*/}
    WORKDIR=runs/${base%.py}
  fi
  [[ -z $BUCKET ]] || BUCKET=$(bucket_name "$BUCKET")
  # Checked before anything runs.
  [[ $CMD != stage ]] || ((${#EXTRA[@]})) ||
    die "stage: give the kareljax command after --, e.g. -- eval --workdir $WORKDIR"
  [[ $CMD != sync || -n $BUCKET ]] || die "sync needs --bucket gs://BUCKET"
  KJ=("$VENV/bin/kareljax")
}

cmd_setup() {
  if ((!DRY_RUN)); then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
      die "$PYTHON is not Python >= 3.11 (kareljax needs it): pass --python python3.11, or make one" \
        "with uv (uv python install 3.11)"
    command -v nvidia-smi >/dev/null 2>&1 || note "warning: no nvidia-smi here: is there an NVIDIA driver?"
  fi
  [[ -x $VENV/bin/python ]] || run "$PYTHON" -m venv "$VENV"
  run "$VENV/bin/python" -m pip install -q --upgrade pip
  run "$VENV/bin/python" -m pip install -r requirements.txt -e . "jax[cuda12]==$JAX_VERSION"
}

cmd_check() {
  if command -v nvidia-smi >/dev/null 2>&1 || ((DRY_RUN)); then
    run nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  fi
  run "$VENV/bin/python" -c 'import jax; print(jax.__version__, jax.default_backend(), jax.devices())'
  if ((!DRY_RUN)); then
    local backend
    backend=$("$VENV/bin/python" -c 'import jax; print(jax.default_backend())')
    [[ $backend == gpu ]] || note "warning: JAX's backend is $backend, not gpu: training the icml" \
      "config on it would take far too long (see docs/scale.md)"
  fi
}

cmd_reproduce() {
  local overrides=("${EXTRA[@]+"${EXTRA[@]}"}")
  run "${KJ[@]}" reproduce --config "$CONFIG" --workdir "$WORKDIR" "${overrides[@]+"${overrides[@]}"}"
}

cmd_paper() {
  run "${KJ[@]}" train --config "$CONFIG" --workdir "$WORKDIR" "${EXTRA[@]+"${EXTRA[@]}"}"
  run "${KJ[@]}" eval --workdir "$WORKDIR" --split test
  run "${KJ[@]}" collect --workdir "$WORKDIR" --steps all
  run "${KJ[@]}" scan --workdir "$WORKDIR" --profile "$PROBE_PROFILE"
  run "${KJ[@]}" report --workdir "$WORKDIR"
}

cmd_stage() {
  run "${KJ[@]}" "${EXTRA[@]}"
}

cmd_sync() {
  local name=${WORKDIR%/}
  name=${name##*/}
  run gsutil -m rsync -r -x '.*orbax-checkpoint-tmp.*' "$WORKDIR" "gs://$BUCKET/runs/$name"
}

main() {
  parse_args "$@"
  ((DRY_RUN)) && note "dry run: the commands are printed, not run"
  run cd "$REPO_ROOT"
  case $CMD in
    setup) cmd_setup ;;
    check) cmd_check ;;
    reproduce) cmd_reproduce ;;
    paper) cmd_paper ;;
    stage) cmd_stage ;;
    sync) cmd_sync ;;
    all) cmd_setup; cmd_check; cmd_reproduce ;;
  esac
}

main "$@"
