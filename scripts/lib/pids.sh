#!/usr/bin/env bash
# Starting TRD's own processes in the background, remembering their pids under a directory.

# start_process PID_DIR NAME COMMAND...
start_process() {
  local dir=$1 name=$2
  shift 2
  mkdir -p "$dir"
  if [ -f "$dir/$name.pid" ] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
    echo "[run] $name already running (pid $(cat "$dir/$name.pid"))" >&2
    return 0
  fi
  nohup "$@" >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

# stop_processes PID_DIR: SIGTERM (workers finish what they hold), then wait, then SIGKILL.
stop_processes() {
  local dir=$1 f pid
  [ -d "$dir" ] || return 0
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}
