#!/usr/bin/env bash
# Starting and stopping TRD's backing services (MongoDB or its wire-compatible stand-in, and
# RabbitMQ) as private, unprivileged-style instances with their data under a given directory.
# Sourced by scripts/run, scripts/stop and scripts/test.

TRD_CACHE=${TRD_CACHE:-$HOME/.cache/trd}
SECANTUS_BIN="$TRD_CACHE/secantus-0.5.3-beta.196/bin/secantusd-rs"

# Where scripts/run's stack listens (scripts/stop stops the same one).
RUN_MONGO_PORT=${TRD_MONGO_PORT:-27017}
RUN_AMQP_PORT=${TRD_AMQP_PORT:-5672}
RUN_RABBIT_NODE=${TRD_RABBIT_NODE:-trd@localhost}

svc_log() { printf '[services] %s\n' "$*" >&2; }

wait_for_port() { # host port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# start_mongo DATA_DIR PORT
start_mongo() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  if wait_for_port 127.0.0.1 "$port" 0; then
    svc_log "MongoDB already listening on 127.0.0.1:$port"
    return 0
  fi
  if command -v mongod >/dev/null; then
    mongod --bind_ip 127.0.0.1 --port "$port" --dbpath "$dir" --fork --logpath "$dir/mongod.log" >/dev/null
  else
    nohup "$SECANTUS_BIN" --host 127.0.0.1 --port "$port" --storage-path "$dir" \
      --sync-on-commit --cache-size 512M --log-level WARNING >"$dir/server.log" 2>&1 &
    echo $! >"$dir/server.pid"
  fi
  wait_for_port 127.0.0.1 "$port" 30 || { svc_log "MongoDB did not start; see $dir"; return 1; }
  svc_log "MongoDB on 127.0.0.1:$port (data in $dir)"
}

stop_mongo() { # DATA_DIR
  local dir=$1
  if [ -f "$dir/server.pid" ]; then
    kill "$(cat "$dir/server.pid")" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$(cat "$dir/server.pid")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$dir/server.pid"
  elif command -v mongod >/dev/null && [ -f "$dir/mongod.lock" ]; then
    mongod --dbpath "$dir" --shutdown >/dev/null 2>&1 || true
  fi
}

# start_rabbit NODE_NAME DATA_DIR AMQP_PORT DIST_PORT
start_rabbit() {
  local node=$1 dir=$2 port=$3 dist=$4
  mkdir -p "$dir/mnesia" "$dir/log"
  if rabbitmq-diagnostics -n "$node" -q ping >/dev/null 2>&1; then
    svc_log "RabbitMQ node $node already running"
    return 0
  fi
  # An empty plugin list keeps start-up fast; the management UI is not needed.
  echo '[].' >"$dir/enabled_plugins"
  # Debian's wrapper runs the broker as the `rabbitmq` user when started by root.
  if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
    chown -R rabbitmq:rabbitmq "$dir"
  fi
  # The Erlang VM spins its schedulers while idle by default; on a host whose cores belong to
  # the recognizers that is CPU taken from them (RabbitMQ's "runtime" guide on busy-waiting).
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none" \
  RABBITMQ_NODENAME=$node RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$port \
    RABBITMQ_DIST_PORT=$dist RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_PID_FILE="$dir/rabbit.pid" \
    rabbitmq-server -detached >/dev/null 2>&1
  local i
  for ((i = 0; i < 120; i++)); do
    rabbitmq-diagnostics -n "$node" -q check_port_connectivity >/dev/null 2>&1 && {
      svc_log "RabbitMQ $node on 127.0.0.1:$port (data in $dir)"
      return 0
    }
    sleep 0.5
  done
  svc_log "RabbitMQ did not start; see $dir/log"
  return 1
}

stop_rabbit() { # NODE_NAME
  rabbitmqctl -n "$1" stop >/dev/null 2>&1 || true
}
