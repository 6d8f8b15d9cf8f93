#!/usr/bin/env bash
# Numbered, timed steps for the provisioning and run scripts, some of them in the background.
# Sourced. Each step announces itself with what it does and roughly how long it takes, writes
# its output to a log of its own (so concurrent steps never interleave on the terminal), and
# reports the seconds it took. A failed step fails the script with the tail of its log; the
# steps still running are stopped.
#
#   STEPS_TAG=provision STEPS_TOTAL=4 STEPS_LOGS=/some/dir
#   step_run  2 "fetching X (about 1 min)" some_function args…   # foreground
#   step_start 3 "building Y (about 6 min)" some_function args…  # background
#   steps_wait 3                                                   # waits for step 3 of STEPS_TAG
#   steps_wait                                                     # waits for every step started

# By step key, "<tag>/<number>".
declare -A STEP_PID=() STEP_LABEL=() STEP_STARTED=() STEP_PREFIX=() STEP_LOG=()

step_say() { printf '%s %s\n' "${STEP_PREFIX[$1]}" "$2" >&2; }

# Runs a step in the background; steps_wait collects it.
step_start() {
  local key="$STEPS_TAG/$1" label=$2
  shift 2
  mkdir -p "$STEPS_LOGS"
  STEP_PREFIX[$key]="[$STEPS_TAG] ${key#*/}/$STEPS_TOTAL"
  STEP_LOG[$key]="$STEPS_LOGS/$STEPS_TAG-${key#*/}.log"
  STEP_LABEL[$key]=$label
  STEP_STARTED[$key]=$SECONDS
  step_say "$key" "$label…"
  # The step's own end, for its duration: it may be collected much later.
  (
    trap 'echo "$SECONDS" >"${STEP_LOG[$key]}.end"' EXIT
    "$@"
  ) >"${STEP_LOG[$key]}" 2>&1 &
  STEP_PID[$key]=$!
}

step_seconds() { echo $(($(cat "${STEP_LOG[$1]}.end" 2>/dev/null || echo "$SECONDS") - STEP_STARTED[$1])); }

# Runs a step in the foreground.
step_run() {
  step_start "$@"
  steps_wait "$1"
}

# Waits for the given steps (all started ones when none is given).
steps_wait() {
  local key keys=()
  if [ $# -gt 0 ]; then
    for key; do keys+=("$STEPS_TAG/$key"); done
  else
    keys=("${!STEP_PID[@]}")
  fi
  for key in "${keys[@]}"; do
    [ -n "${STEP_PID[$key]:-}" ] || continue
    if wait "${STEP_PID[$key]}"; then
      unset "STEP_PID[$key]"
      step_say "$key" "done in $(step_seconds "$key") s"
    else
      unset "STEP_PID[$key]"
      step_say "$key" "FAILED after $(step_seconds "$key") s: ${STEP_LABEL[$key]}; end of ${STEP_LOG[$key]}:"
      tail -n 30 "${STEP_LOG[$key]}" >&2
      exit 1
    fi
  done
}

# A process and everything it started, by parent pid: a background cargo or fstcompose must not
# outlive the script that started it.
step_kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do step_kill_tree "$child"; done
  kill -TERM "$1" 2>/dev/null || true
}

steps_abort() {
  local key
  for key in "${!STEP_PID[@]}"; do step_kill_tree "${STEP_PID[$key]}"; done
}
trap steps_abort EXIT
