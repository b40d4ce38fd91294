#!/usr/bin/env bash
# Run kareljax on a Cloud TPU VM or TPU pod slice with gcloud: create the VM, install kareljax on
# every worker, train on all workers (multi-host through jax.distributed), run the probe stages,
# copy the run back, delete the VM. `launch/tpu_vm.sh --help` for the details; `--dry-run` prints
# every command instead of running it.
set -euo pipefail

PROG=${0##*/}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=launch/common.sh
source "$SCRIPT_DIR/common.sh"

JAX_VERSION=0.10.2
LIBTPU_INDEX=https://storage.googleapis.com/jax-releases/libtpu_releases.html
ICML_BATCH=80      # configs/icml.py train.batch_size

# Options (see usage).
CMD=""
NAME=""
ZONE="us-central2-b"
ACCEL="v4-8"
VERSION=""
PROJECT=""
BUCKET=""
CONFIG="configs/icml.py"
RUN_NAME=""
REPO_URL=""
REPO_REF="main"
WORKDIR_MODE="gcs"
WORKER="0"
SYNC_EVERY=900
PROBE_PROFILE="paper"
DEST=""
VIA="gsutil"
DRY_RUN=0
SPOT=0
DETACH=0
KEEP=0
NO_CHECKPOINTS=0
FORCE=0
CREATE_FLAGS=()
EXTRA=()

usage() {
  cat <<EOF
Usage: $PROG COMMAND --name NAME [options] [-- ARGS...]

Runs kareljax on a Cloud TPU VM (single host, e.g. v4-8) or a pod slice (several hosts, e.g. v4-64).

Commands:
  create      gcloud compute tpus tpu-vm create the VM / pod slice
  setup       on every worker: copy the source (or git clone --repo-url), make ~/kareljax/.venv
              (Python 3.11 from uv), pip install -r requirements.txt -e . jax[tpu]==$JAX_VERSION,
              build the dataset locally (kareljax data build), mount the bucket (gcsfuse mode only)
  train       kareljax train on every worker with KARELJAX_DISTRIBUTED=1; ARGS after -- are config
              overrides (--config.train.batch_size=96 ...)
  post        eval --split test, collect --steps all, scan --profile $PROBE_PROFILE, then report:
              on a single host all four on worker 0; on a multi-host slice eval, collect and scan
              on every worker with KARELJAX_DISTRIBUTED=1 (one process per worker, the devices of
              all of them; process 0 writes), then report (single-process, light) on worker 0
  run         any kareljax command on --worker 0 (default) or all: $PROG run --name N -- eval
              --workdir @WORKDIR --split test   (@WORKDIR becomes the run directory: gs://BUCKET/
              runs/RUN in gcs mode; with --worker all, KARELJAX_DISTRIBUTED=1 is set, which train,
              eval, collect and scan use; on a multi-host slice eval, collect and scan need it)
  logs        the last lines of the run's logs on --worker (default 0)
  copy-back   the run directory to DEST (default runs/RUN) on this machine, through the bucket
              (--via gsutil, default) or straight from worker 0 (--via scp)
  delete      delete the VM
  all         create, setup, train, post, copy-back, delete (unless --keep)

Options (--opt VALUE or --opt=VALUE):
  --name NAME               TPU VM name (required; lowercase letters, digits, -)
  --zone ZONE               default $ZONE
  --accelerator-type TYPE   v4-8 (default; 4 chips, 1 host), v4-16, v4-64, v5p-8, v5litepod-8, v6e-8 ...
  --version RUNTIME         TPU runtime; default by type: tpu-ubuntu2204-base (v2/v3/v4),
                            v2-alpha-tpuv5 (v5p), v2-alpha-tpuv5-lite (v5litepod), v2-alpha-tpuv6e (v6e)
  --project PROJECT         default: gcloud's configured project
  --bucket gs://BUCKET      where the run lives (gcs, gcsfuse) or is synced to (local); required
                            for train/post/run/copy-back unless --workdir-mode local with --via scp
  --config FILE             default $CONFIG
  --run-name RUN            run directory name, gs://BUCKET/runs/RUN; default NAME
  --repo-url URL            git clone this on the workers (default: copy this checkout with scp)
  --ref REF                 branch or tag for --repo-url (default $REPO_REF)
  --workdir-mode MODE       gcs (default): the run directory is gs://BUCKET/runs/RUN itself,
                            passed as --workdir to every command on every worker; nothing is
                            mounted or synced (kareljax writes its run files to gs:// and orbax
                            its checkpoints, natively; the same URL on all hosts, as a multi-host
                            run needs). gcsfuse: the bucket is mounted at ~/gcs on every worker
                            and the run directory is ~/gcs/runs/RUN (orbax renames each finished
                            checkpoint's folder, which Cloud Storage FUSE does object by object,
                            not atomically). local: ~/kareljax/runs/RUN on the VM's disk,
                            rsynced to gs://BUCKET/runs/RUN every --sync-every seconds and at the
                            end (single-host slices only; the icml run's checkpoints, ~127 GB,
                            outgrow a 100 GB boot disk: use gcs for it)
  --sync-every SECONDS      local mode: seconds between background rsyncs (default $SYNC_EVERY)
  --worker 0|all|N          for run/logs (default 0)
  --probe-profile P         post: kareljax scan profile, paper (default) or cpu
  --dest DIR                copy-back destination (default runs/RUN)
  --via gsutil|scp          copy-back route (default gsutil)
  --create-flag FLAG        extra flag for tpu-vm create (repeatable), e.g. --create-flag=--reserved
  --spot                    create a Spot VM (can be preempted: rerun 'train' to resume)
  --detach                  train/post/run: start in the background on the VM (survives the ssh
                            session; follow with '$PROG logs'); post on a multi-host slice: every
                            worker starts the stages, worker 0 runs report after its scan
  --no-checkpoints          copy-back: leave checkpoints/ (about 3 GB each at icml size) behind
  --keep                    all: do not delete the VM at the end
  --force                   skip the batch-size, single-host and --worker all checks
  --dry-run                 print every command instead of running it
  -h, --help                this text

Examples:
  $PROG all --name kj-v4 --accelerator-type v4-8 --bucket gs://my-bucket --dry-run
  $PROG train --name kj-pod --accelerator-type v4-64 --bucket gs://my-bucket -- --config.train.batch_size=96
  $PROG run --name kj-v4 --bucket gs://my-bucket -- eval --workdir @WORKDIR --split test
EOF
}


# fill TEMPLATE KEY VALUE ...: TEMPLATE with every @@KEY@@ replaced by VALUE.
fill() {
  local text=$1
  shift
  while (($# >= 2)); do
    text=${text//"@@$1@@"/"$2"}
    shift 2
  done
  [[ $text != *@@*@@* ]] || die "internal: unfilled placeholder in a remote script"
  printf '%s' "$text"
}

# ---------------------------------------------------------------------------------------------
# Argument parsing.

set_opt() {
  local opt=$1 val=$2
  case $opt in
    --name) NAME=$val ;;
    --zone) ZONE=$val ;;
    --accelerator-type) ACCEL=$val ;;
    --version) VERSION=$val ;;
    --project) PROJECT=$val ;;
    --bucket) BUCKET=$val ;;
    --config) CONFIG=$val ;;
    --run-name) RUN_NAME=$val ;;
    --repo-url) REPO_URL=$val ;;
    --ref) REPO_REF=$val ;;
    --workdir-mode) WORKDIR_MODE=$val ;;
    --sync-every) SYNC_EVERY=$val ;;
    --worker) WORKER=$val ;;
    --probe-profile) PROBE_PROFILE=$val ;;
    --dest) DEST=$val ;;
    --via) VIA=$val ;;
    --create-flag) CREATE_FLAGS+=("$val") ;;
    *) die "unknown option $opt (see $PROG --help)" ;;
  esac
}

parse_args() {
  while (($#)); do
    case $1 in
      --) shift; EXTRA=("$@"); break ;;
      -h|--help) usage; exit 0 ;;
      --dry-run) DRY_RUN=1; shift ;;
      --spot) SPOT=1; shift ;;
      --detach) DETACH=1; shift ;;
      --keep) KEEP=1; shift ;;
      --no-checkpoints) NO_CHECKPOINTS=1; shift ;;
      --force) FORCE=1; shift ;;
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
    create|setup|train|post|run|logs|copy-back|delete|all) ;;
    *) die "unknown command '$CMD' (see $PROG --help)" ;;
  esac
  [[ -n $NAME ]] || die "--name is required"
  [[ $NAME =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] || die "--name: lowercase letters, digits and -, got '$NAME'"
  RUN_NAME=${RUN_NAME:-$NAME}
  [[ $RUN_NAME =~ ^[A-Za-z0-9][-A-Za-z0-9_.]*$ ]] || die "--run-name: letters, digits, -, _, ., got '$RUN_NAME'"
  [[ -z $BUCKET ]] || BUCKET=$(bucket_name "$BUCKET")
  case $WORKDIR_MODE in gcs|gcsfuse|local) ;; *) die "--workdir-mode: gcs, gcsfuse or local" ;; esac
  case $VIA in gsutil|scp) ;; *) die "--via: gsutil or scp" ;; esac
  case $PROBE_PROFILE in paper|cpu) ;; *) die "--probe-profile: paper or cpu" ;; esac
  [[ $WORKER =~ ^(all|[0-9]+)$ ]] || die "--worker: all or a worker number"
  [[ $SYNC_EVERY =~ ^[1-9][0-9]*$ ]] || die "--sync-every: a number of seconds"
  DEST=${DEST:-runs/$RUN_NAME}
  topology
  if [[ -z $VERSION ]]; then
    case ${ACCEL%-*} in
      v5p) VERSION=v2-alpha-tpuv5 ;;
      v5litepod|v5e) VERSION=v2-alpha-tpuv5-lite ;;
      v6e) VERSION=v2-alpha-tpuv6e ;;
      *) VERSION=tpu-ubuntu2204-base ;;
    esac
  fi
  GC=(--zone="$ZONE")
  [[ -z $PROJECT ]] || GC+=(--project="$PROJECT")
}

# topology: TPU_DEVICES (JAX devices) and TPU_HOSTS (workers) of ACCEL; 0 when unknown.
topology() {
  local family=${ACCEL%-*} n=${ACCEL##*-}
  TPU_DEVICES=0
  TPU_HOSTS=0
  [[ $n =~ ^[0-9]+$ ]] || return 0
  case $family in
    v2|v3) TPU_DEVICES=$n; TPU_HOSTS=$(((n + 7) / 8)) ;;              # N TensorCores, 8 a host
    v4|v5p) TPU_DEVICES=$((n / 2)); TPU_HOSTS=$(((n + 7) / 8)) ;;     # N/2 megacore chips, 4 a host
    v5litepod|v5e|v6e)                                                  # N chips; 4 a host beyond 8
      TPU_DEVICES=$n
      if ((n <= 8)); then TPU_HOSTS=1; else TPU_HOSTS=$((n / 4)); fi ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Remote scripts (run by bash on the workers; literal text with @@PLACEHOLDERS@@).

MOUNT_TEMPLATE=$(cat <<'EOF'
# The bucket, mounted with gcsfuse at ~/gcs: the run directory must be the same path on every worker.
if ! command -v gcsfuse >/dev/null 2>&1; then
  echo "deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt gcsfuse-$(lsb_release -cs) main" | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null
  curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null
  sudo apt-get update -qq && sudo apt-get install -y -qq gcsfuse
fi
mkdir -p ~/gcs
mountpoint -q ~/gcs || gcsfuse --implicit-dirs --rename-dir-limit=1000000 --metadata-cache-ttl-secs=0 @@BUCKET@@ ~/gcs
mkdir -p ~/gcs/runs
EOF
)

SOURCE_GIT_TEMPLATE=$(cat <<'EOF'
if [ -d ~/kareljax/.git ]; then
  git -C ~/kareljax fetch -q --depth 1 origin @@REF@@ && git -C ~/kareljax checkout -q FETCH_HEAD
else
  git clone -q --depth 1 --branch @@REF@@ @@URL@@ ~/kareljax
fi
EOF
)

SOURCE_TAR_TEMPLATE=$(cat <<'EOF'
mkdir -p ~/kareljax && tar -xzf ~/kareljax-src.tgz -C ~/kareljax && rm ~/kareljax-src.tgz
EOF
)

SETUP_TEMPLATE=$(cat <<'EOF'
set -euo pipefail
@@SOURCE@@
cd ~/kareljax
# kareljax needs Python >= 3.11 (the TPU images have 3.10): uv provides a standalone 3.11.
export PATH="$HOME/.local/bin:$PATH"
command -v uv >/dev/null 2>&1 || curl -LsSf https://astral.sh/uv/install.sh | sh
[ -x .venv/bin/python ] || uv venv -q --seed --python 3.11 .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt -e . "jax[tpu]==@@JAX_VERSION@@" -f @@LIBTPU_INDEX@@
.venv/bin/python -c "import jax; print(jax.__version__)"  # imports only: no device use here
# Every worker reads its own copy of the dataset (byte-reproducible: identical on all of them).
.venv/bin/kareljax data build --config @@CONFIG@@ @@DATA_ARGS@@
@@MOUNT@@
EOF
)

# A kareljax job on a worker: its output goes to the terminal and to ~/kareljax-RUN-JOB.log.
JOB_TEMPLATE=$(cat <<'EOF'
set -euo pipefail
@@MOUNT@@
cd ~/kareljax
@@ENV@@
workdir=@@WORKDIR@@
log=~/kareljax-@@RUN@@-@@JOB@@.log
@@MKDIR@@
@@PRE@@
set +e
(
set -e
@@BODY@@
) 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
set -e
@@POST@@
echo "@@JOB@@ finished with exit status $status (log: $log)"
exit "$status"
EOF
)

# Local workdir mode (single host): resume from the bucket when the VM is new, rsync the run
# directory to the bucket in the background and once more at the end.
LOCAL_PRE_TEMPLATE=$(cat <<'EOF'
url=@@URL@@
if [ ! -e "$workdir/config.json" ] && gsutil -q stat "$url/config.json"; then
  echo "copying $url to $workdir (resuming there)"
  mkdir -p "$workdir" && gsutil -m -q rsync -r "$url" "$workdir"
fi
sync_up() {
  [ -d "$workdir" ] || return 0
  gsutil -m -q rsync -r -d -x ".*orbax-checkpoint-tmp.*" "$workdir" "$url" || echo "warning: gsutil rsync to $url failed" >&2
}
( while sleep @@SYNC_EVERY@@; do sync_up; done ) &
syncer=$!
EOF
)

LOCAL_POST_TEMPLATE=$(cat <<'EOF'
kill "$syncer" 2>/dev/null || true
wait "$syncer" 2>/dev/null || true
sync_up
EOF
)

# CMD on worker 0 of a slice only: its number comes from the metadata server, where
# jax.distributed's TPU cluster detection reads it (worker 0 is JAX process 0, the one that writes).
WORKER0_TEMPLATE=$(cat <<'EOF'
worker=$(curl -fsS -H 'Metadata-Flavor: Google' http://metadata.google.internal/computeMetadata/v1/instance/attributes/agent-worker-number)
if [ "$worker" = 0 ]; then
  @@CMD@@
fi
EOF
)

# ---------------------------------------------------------------------------------------------
# Helpers.

gcs_url() { printf 'gs://%s/runs/%s' "$BUCKET" "$RUN_NAME"; }

# The run directory on the workers: gs://BUCKET/runs/RUN (gcs mode), or a path with ~ unexpanded
# (the worker's shell expands it: the same path on all).
remote_workdir() {
  local home="~"
  case $WORKDIR_MODE in
    gcs) gcs_url ;;
    gcsfuse) printf '%s/gcs/runs/%s' "$home" "$RUN_NAME" ;;
    local) printf '%s/kareljax/runs/%s' "$home" "$RUN_NAME" ;;
  esac
}

mount_script() {
  if [[ $WORKDIR_MODE == gcsfuse ]]; then fill "$MOUNT_TEMPLATE" BUCKET "$BUCKET"; fi
}

need_bucket() { [[ -n $BUCKET ]] || die "$CMD needs --bucket gs://BUCKET"; }

single_host() { ((TPU_HOSTS == 1)); }

# The commands that run as one process per worker on a multi-host slice (KARELJAX_DISTRIBUTED=1).
multi_process() { [[ $1 == train || $1 == eval || $1 == collect || $1 == scan ]]; }

check_mode() {
  if [[ $WORKDIR_MODE == local ]] && ! single_host && ((!FORCE)); then
    die "--workdir-mode local needs a single-host slice: on $ACCEL ($TPU_HOSTS workers) every" \
      "process must see the run directory (checkpoints are written and read by all hosts); use gcs"
  fi
}

# The icml config's batch of 80 must split over the devices; suggest the nearest multiple.
check_batch() {
  ((FORCE)) && return 0
  [[ $CONFIG == configs/icml.py || $CONFIG == icml ]] || return 0
  ((TPU_DEVICES > 0)) || return 0
  local a
  for a in "${EXTRA[@]+"${EXTRA[@]}"}"; do [[ $a == --config.train.batch_size=* ]] && return 0; done
  ((ICML_BATCH % TPU_DEVICES == 0)) && return 0
  local lo=$((ICML_BATCH / TPU_DEVICES * TPU_DEVICES)) hi
  hi=$((lo + TPU_DEVICES))
  local best=$hi
  ((lo > 0 && ICML_BATCH - lo < hi - ICML_BATCH)) && best=$lo
  die "$CONFIG's batch of $ICML_BATCH does not split over the $TPU_DEVICES devices of $ACCEL;" \
    "add -- --config.train.batch_size=$best (the multiple of $TPU_DEVICES nearest $ICML_BATCH;" \
    "tokens per step change by $(((best - ICML_BATCH) * 100 / ICML_BATCH)) %), or --force"
}

data_args() {
  local a out=()
  for a in "${EXTRA[@]+"${EXTRA[@]}"}"; do [[ $a == --config.data.* ]] && out+=("$a"); done
  shq_all "${out[@]+"${out[@]}"}"
}

# ssh_cmd WORKER SCRIPT: runs SCRIPT on WORKER (a number, or all: on every worker in parallel) in
# the login shell there, bash on the TPU VM images.
ssh_cmd() {
  run gcloud compute tpus tpu-vm ssh "$NAME" "${GC[@]}" --worker="$1" \
    --ssh-flag=-oServerAliveInterval=60 --command="$2"
}

# job JOBNAME WORKER DISTRIBUTED BODY: runs BODY (kareljax commands using "$workdir") on WORKER.
job() {
  local jobname=$1 worker=$2 distributed=$3 body=$4 env="" mkdir="" pre="" post="" script
  ((distributed)) && env="export KARELJAX_DISTRIBUTED=1  # jax.distributed.initialize(): TPU pod auto-detection"
  # On gs:// a folder is a name prefix: nothing to make.
  [[ $WORKDIR_MODE == gcs ]] || mkdir="mkdir -p \"\$(dirname \"\$workdir\")\""
  if [[ $WORKDIR_MODE == local && -n $BUCKET ]]; then
    pre=$(fill "$LOCAL_PRE_TEMPLATE" URL "$(gcs_url)" SYNC_EVERY "$SYNC_EVERY")
    post=$LOCAL_POST_TEMPLATE
  fi
  script=$(fill "$JOB_TEMPLATE" MOUNT "$(mount_script)" ENV "$env" WORKDIR "$(remote_workdir)" \
    RUN "$RUN_NAME" JOB "$jobname" MKDIR "$mkdir" PRE "$pre" BODY "$body" POST "$post")
  if ((DETACH)); then
    script="setsid nohup bash -c $(shq "$script") >/dev/null 2>&1 </dev/null &
echo \"$jobname started in the background on worker \$(hostname); follow it with: $PROG logs --name $NAME --zone $ZONE\""
  fi
  ssh_cmd "$worker" "$script"
}

# ---------------------------------------------------------------------------------------------
# Commands.

cmd_create() {
  local flags=(--accelerator-type="$ACCEL" --version="$VERSION"
    --scopes=https://www.googleapis.com/auth/cloud-platform)
  ((SPOT)) && flags+=(--spot)
  note "creating $NAME: $ACCEL ($TPU_DEVICES JAX devices, $TPU_HOSTS worker(s)), runtime $VERSION"
  run gcloud compute tpus tpu-vm create "$NAME" "${GC[@]}" "${flags[@]}" \
    "${CREATE_FLAGS[@]+"${CREATE_FLAGS[@]}"}"
}

cmd_setup() {
  [[ $WORKDIR_MODE != gcsfuse ]] || need_bucket
  local source tarball
  if [[ -n $REPO_URL ]]; then
    source=$(fill "$SOURCE_GIT_TEMPLATE" REF "$(shq "$REPO_REF")" URL "$(shq "$REPO_URL")")
  else
    tarball="${TMPDIR:-/tmp}/kareljax-src-$NAME.tgz"
    note "copying this checkout ($REPO_ROOT) to every worker"
    run tar -C "$REPO_ROOT" -czf "$tarball" --exclude=./.git --exclude=./.venv --exclude=./runs \
      --exclude=./data --exclude=__pycache__ --exclude=.hypothesis --exclude=.pytest_cache \
      --exclude='*.egg-info' .
    run gcloud compute tpus tpu-vm scp "$tarball" "$NAME:kareljax-src.tgz" "${GC[@]}" --worker=all
    source=$SOURCE_TAR_TEMPLATE
  fi
  ssh_cmd all "$(fill "$SETUP_TEMPLATE" SOURCE "$source" JAX_VERSION "$JAX_VERSION" \
    LIBTPU_INDEX "$LIBTPU_INDEX" CONFIG "$(shq "$CONFIG")" DATA_ARGS "$(data_args)" \
    MOUNT "$(mount_script)")"
}

cmd_train() {
  [[ $WORKDIR_MODE == local ]] || need_bucket
  check_mode
  check_batch
  local where
  where=$(remote_workdir)
  [[ $WORKDIR_MODE == gcs || -z $BUCKET ]] || where+=" ($(gcs_url))"
  note "training $CONFIG on all $TPU_HOSTS worker(s) of $NAME; run directory $where"
  local cmdline
  cmdline=".venv/bin/kareljax train --config $(shq "$CONFIG") --workdir \"\$workdir\" --no-progress"
  ((${#EXTRA[@]} == 0)) || cmdline+=" $(shq_all "${EXTRA[@]}")"
  job train all 1 "$cmdline"
}

cmd_post() {
  [[ $WORKDIR_MODE == local ]] || need_bucket
  check_mode
  local stages report=".venv/bin/kareljax report --workdir \"\$workdir\""
  stages=$(cat <<EOF
.venv/bin/kareljax eval --workdir "\$workdir" --split test
.venv/bin/kareljax collect --workdir "\$workdir" --steps all
.venv/bin/kareljax scan --workdir "\$workdir" --profile $PROBE_PROFILE
EOF
)
  if single_host; then
    job post 0 0 "$stages"$'\n'"$report"
  elif ((DETACH)); then
    # Every worker starts in the background and returns at once: worker 0 (JAX process 0, the one
    # that writes) runs the report itself after the scan.
    note "post on all $TPU_HOSTS workers of $NAME (KARELJAX_DISTRIBUTED=1), report on worker 0 after"
    job post all 1 "$stages"$'\n'"$(fill "$WORKER0_TEMPLATE" CMD "$report")"
  else
    note "post on all $TPU_HOSTS workers of $NAME (KARELJAX_DISTRIBUTED=1), then report on worker 0"
    job post all 1 "$stages"
    job report 0 0 "$report"
  fi
}

cmd_run() {
  [[ $WORKDIR_MODE == local ]] || need_bucket
  ((${#EXTRA[@]})) || die "run: give the kareljax command after --, e.g. -- eval --workdir @WORKDIR"
  # Each word quoted for the worker's shell; @WORKDIR becomes "$workdir" (expanded there).
  local a q words=() distributed=0
  for a in "${EXTRA[@]}"; do
    q=$(shq "${a//@WORKDIR/__WORKDIR__}")
    if [[ $q == \'* ]]; then
      q=${q//__WORKDIR__/\'\"\$workdir\"\'}
    else
      q=${q//__WORKDIR__/\"\$workdir\"}
    fi
    words+=("$q")
  done
  check_mode
  if [[ $WORKER == all ]]; then
    distributed=1
    multi_process "${EXTRA[0]}" || note "warning: '${EXTRA[0]}' is single-process: on every" \
      "worker it runs a process of its own"
  elif [[ ${EXTRA[0]} != train ]] && multi_process "${EXTRA[0]}" && ! single_host && ((!FORCE)); then
    die "on a multi-host slice ($ACCEL, $TPU_HOSTS workers) '${EXTRA[0]}' runs on every worker:" \
      "--worker all (with KARELJAX_DISTRIBUTED=1); --force to run it on worker $WORKER alone"
  fi
  local cmdline=".venv/bin/kareljax ${words[*]}"
  job "${EXTRA[0]}" "$WORKER" "$distributed" "$cmdline"
}

cmd_logs() {
  ssh_cmd "$WORKER" "tail -n 40 ~/kareljax-$RUN_NAME-*.log"
}

cmd_copy_back() {
  local exclude=()
  ((NO_CHECKPOINTS)) && exclude=(-x '(corrupt_|nonfinite_)?checkpoints/.*')
  if [[ $VIA == scp ]]; then
    [[ $WORKDIR_MODE == local ]] || die "--via scp copies ~/kareljax/runs/RUN (--workdir-mode local)"
    run mkdir -p "$(dirname "$DEST")"
    ((NO_CHECKPOINTS)) && note "--no-checkpoints is not applied with --via scp"
    run gcloud compute tpus tpu-vm scp --recurse "$NAME:kareljax/runs/$RUN_NAME" "$DEST" \
      "${GC[@]}" --worker=0
    return
  fi
  need_bucket
  if [[ $WORKDIR_MODE == local ]]; then
    note "syncing worker 0's run directory to $(gcs_url) first"
    ssh_cmd 0 "gsutil -m -q rsync -r -d -x \".*orbax-checkpoint-tmp.*\" $(remote_workdir) $(gcs_url)"
  fi
  run mkdir -p "$DEST"
  run gsutil -m rsync -r "${exclude[@]+"${exclude[@]}"}" "$(gcs_url)" "$DEST"
  note "the run is in $DEST (and stays in $(gcs_url))"
}

cmd_delete() {
  run gcloud compute tpus tpu-vm delete "$NAME" "${GC[@]}" --quiet
}

cmd_all() {
  need_bucket
  check_mode
  check_batch
  ((DETACH)) && die "all waits for each stage; --detach is for train/post/run"
  cmd_create
  cmd_setup
  cmd_train
  cmd_post
  cmd_copy_back
  if ((KEEP)); then
    note "--keep: $NAME is still running (and billed); delete it with: $PROG delete --name $NAME --zone $ZONE"
  else
    cmd_delete
  fi
}

main() {
  parse_args "$@"
  ((DRY_RUN)) && note "dry run: the commands are printed, not run"
  case $CMD in
    create) cmd_create ;;
    setup) cmd_setup ;;
    train) cmd_train ;;
    post) cmd_post ;;
    run) cmd_run ;;
    logs) cmd_logs ;;
    copy-back) cmd_copy_back ;;
    delete) cmd_delete ;;
    all) cmd_all ;;
  esac
}

main "$@"
