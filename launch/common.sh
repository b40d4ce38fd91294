# shellcheck shell=bash
# Shared by the launch scripts (sourced, not run): messages, shell quoting, dry-run execution and
# the argument checks both make. The sourcing script sets PROG (its name) and DRY_RUN (0 or 1).

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 2; }
note() { printf '# %s\n' "$*" >&2; }

# shq WORD: WORD quoted for a POSIX shell (single quotes, only when needed).
shq() {
  local s=$1
  if [[ -n $s && $s =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s' "$s"
  else
    printf "'%s'" "${s//\'/\'\\\'\'}"
  fi
}

# shq_all WORDS...: the words quoted and joined by spaces (--opt=VALUE as --opt=QUOTED_VALUE).
shq_all() {
  local out="" w
  for w in "$@"; do
    if [[ $w =~ ^--[a-z][-a-z]*= ]]; then
      out+="${out:+ }${w%%=*}=$(shq "${w#*=}")"
    else
      out+="${out:+ }$(shq "$w")"
    fi
  done
  printf '%s' "$out"
}

# run CMD ARGS...: runs the command, or with --dry-run prints it (quoted, copy-pasteable).
run() {
  if ((DRY_RUN)); then
    printf '+ %s\n' "$(shq_all "$@")"
  else
    "$@"
  fi
}

# check_extra ARGS...: the arguments after -- (for kareljax) must not hold --dry-run.
check_extra() {
  local a
  for a in "$@"; do
    [[ $a != --dry-run ]] || die "--dry-run after -- would go to kareljax: put it before --"
  done
}

# bucket_name GIVEN: the bucket of gs://BUCKET[/] (or BUCKET), after checking GCS's naming rule.
bucket_name() {
  local given=$1 name=${1#gs://}
  name=${name%/}
  [[ $name =~ ^[a-z0-9][-a-z0-9_.]{1,61}[a-z0-9]$ ]] ||
    die "--bucket: expected gs://BUCKET with a bucket name of 3-63 characters (a-z, 0-9, -, _, .), got '$given'"
  printf '%s' "$name"
}
