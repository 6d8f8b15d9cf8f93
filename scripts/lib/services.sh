#!/usr/bin/env bash
# Starting and stopping TRD's backing services (MongoDB or its wire-compatible stand-in, and
# RabbitMQ) as private instances with their data under a given directory, listening on
# loopback only, each with a user of TRD's whose password is generated once and kept in a
# credentials file. Sourced by scripts/run, scripts/stop and scripts/test (and by the tests'
# private brokers, tests/src/services.rs).

TRD_CACHE=${TRD_CACHE:-$HOME/.cache/trd}
SECANTUS_BIN="$TRD_CACHE/secantus-0.5.3-beta.196/bin/secantusd-rs"
PYMONGO_DIR="$TRD_CACHE/pymongo-4.20.0"
SERVICES_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Where scripts/run's stack listens (scripts/stop stops the same one).
RUN_MONGO_PORT=${TRD_MONGO_PORT:-27017}
RUN_AMQP_PORT=${TRD_AMQP_PORT:-5672}
RUN_RABBIT_NODE=${TRD_RABBIT_NODE:-trd@localhost}

# Erlang's port mapper (started by the first broker or rabbitmqctl on the host, and shared by
# all of them) and the command line tools' own distribution listener: loopback only.
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"

svc_log() { printf '[services] %s\n' "$*" >&2; }

wait_for_port() { # host port seconds (0: whether it listens now)
  local i
  for ((i = 0; ; i++)); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    ((i < $3 * 10)) || return 1
    sleep 0.1
  done
}

# A credentials file holds `user=NAME` and `password=SECRET` lines, readable by its owner only,
# in a directory only its owner enters. The password is made once; removing the file makes a
# new one at the next start.
ensure_credentials() { # FILE USER
  local file=$1 dir
  dir=$(dirname "$file")
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [ ! -s "$file" ]; then
    # printf is a builtin: the password never appears in a process's arguments.
    (umask 077 && printf 'user=%s\npassword=%s\n' "$2" "$(new_password)" >"$file.new")
    mv "$file.new" "$file"
  fi
  chmod 600 "$file"
}

# 48 hex digits (192 bits): nothing to escape in a URI or a command line.
new_password() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

credential() { sed -n "s/^$2=//p" "$1"; } # FILE KEY

amqp_uri() { # CREDENTIALS_FILE PORT
  printf 'amqp://%s:%s@127.0.0.1:%s/%%2f' \
    "$(credential "$1" user)" "$(credential "$1" password)" "$2"
}

mongo_uri() { # CREDENTIALS_FILE PORT
  printf 'mongodb://%s:%s@127.0.0.1:%s/?authSource=admin' \
    "$(credential "$1" user)" "$(credential "$1" password)" "$2"
}

# start_mongo DATA_DIR PORT CREDENTIALS_DIR: the server requires authentication; TRD's user's
# credentials are CREDENTIALS_DIR/mongodb (mongo_uri), the administrator's, who creates and
# updates it, CREDENTIALS_DIR/mongodb-admin.
start_mongo() {
  local dir=$1 port=$2 credentials=$3
  mkdir -p "$dir"
  if mongo_running "$dir"; then
    svc_log "MongoDB of $dir already running"
  elif wait_for_port 127.0.0.1 "$port" 0; then
    # Someone else's server: never give it TRD's users, nor TRD's data.
    svc_log "port $port is taken by another process; choose another port"
    return 1
  else
    if command -v mongod >/dev/null; then
      mongod --auth --bind_ip 127.0.0.1 --port "$port" --dbpath "$dir" --fork \
        --logpath "$dir/mongod.log" >/dev/null
    else
      # TRD_MONGO_LOG_FILE_MAX: smaller journal files than the 128 MB the server allocates
      # whole, for a test that fills the disk and must see the next write meet it.
      # MIMALLOC_ALLOW_THP=0: the server's allocator otherwise backs each fresh block with a
      # 2 MB huge page that the kernel zeroes whole; reading and writing 320 kB chunks of
      # normalized audio then cost it about a quarter more CPU.
      MIMALLOC_ALLOW_THP=0 nohup "$SECANTUS_BIN" --auth --host 127.0.0.1 --port "$port" --storage-path "$dir" \
        --sync-on-commit --cache-size 512M --log-level WARNING \
        ${TRD_MONGO_LOG_FILE_MAX:+--log-file-max "$TRD_MONGO_LOG_FILE_MAX"} \
        >"$dir/server.log" 2>&1 &
      echo $! >"$dir/server.pid"
    fi
    wait_for_port 127.0.0.1 "$port" 30 || { svc_log "MongoDB did not start; see $dir"; return 1; }
  fi
  ensure_credentials "$credentials/mongodb-admin" trd-admin
  ensure_credentials "$credentials/mongodb" trd
  PYTHONPATH="$PYMONGO_DIR" python3 "$SERVICES_LIB/mongo-users.py" "$port" \
    "$credentials/mongodb-admin" "$credentials/mongodb" || return 1
  svc_log "MongoDB on 127.0.0.1:$port (data in $dir, credentials in $credentials/mongodb)"
}

# Whether the server of DATA_DIR runs: the pid the MongoDB-wire server's start wrote, or the
# one mongod keeps in its lock file while it runs. A server killed a moment ago may still be
# a zombie that nobody has reaped yet: that one is dead.
mongo_running() { # DATA_DIR
  local pid state
  pid=$(cat "$1/server.pid" 2>/dev/null || cat "$1/mongod.lock" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
  [ "$state" != Z ] && [ "$state" != X ]
}

stop_mongo() { # DATA_DIR
  local dir=$1
  if [ -f "$dir/server.pid" ]; then
    kill "$(cat "$dir/server.pid")" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$(cat "$dir/server.pid")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$dir/server.pid"
  elif command -v mongod >/dev/null && [ -f "$dir/mongod.lock" ]; then
    mongod --dbpath "$dir" --shutdown >/dev/null 2>&1 || true
  fi
}

# start_rabbit NODE_NAME DATA_DIR AMQP_PORT DIST_PORT CREDENTIALS_FILE: AMQP and the Erlang
# distribution on 127.0.0.1; TRD's user (amqp_uri) the only one, `guest` deleted.
start_rabbit() {
  local node=$1 dir=$2 port=$3 dist=$4 credentials=$5
  mkdir -p "$dir/mnesia" "$dir/log"
  # RabbitMQ takes a delivery back when it stays unacknowledged past its consumer timeout (30
  # min by default) and closes the consumer's channel. A stage may hold a file for up to
  # stage_timeout_seconds (2 h by default), and a message waits in hand while a dependency is
  # down, so the broker's limit is a day: TRD's own leases decide when work is abandoned.
  # (Tests shorten it, and the channel tick that checks it, to prove an early timeout is
  # survived too.)
  local timeout=${TRD_RABBIT_CONSUMER_TIMEOUT_MS:-86400000} tick=${TRD_RABBIT_CHANNEL_TICK_MS:-60000}
  printf '[{rabbit, [{consumer_timeout, %s}, {channel_tick_interval, %s}]}].\n' \
    "$timeout" "$tick" >"$dir/advanced.config"
  if rabbitmq-diagnostics -n "$node" -q ping >/dev/null 2>&1; then
    svc_log "RabbitMQ node $node already running"
    rabbitmqctl -n "$node" -q eval "application:set_env(rabbit, consumer_timeout, $timeout)." \
      >/dev/null 2>&1 || svc_log "RabbitMQ: could not raise the consumer timeout on $node"
  elif wait_for_port 127.0.0.1 "$port" 0; then
    svc_log "port $port is taken by another process; choose another port"
    return 1
  else
    # An empty plugin list keeps start-up fast and opens no other listener (the management
    # UI and the Prometheus endpoint are plugins).
    echo '[].' >"$dir/enabled_plugins"
    # Debian's wrapper runs the broker as the `rabbitmq` user when started by root.
    if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
      chown -R rabbitmq:rabbitmq "$dir"
    fi
    # The Erlang VM spins its schedulers while idle by default; on a host whose cores belong to
    # the recognizers that is CPU taken from them (RabbitMQ's "runtime" guide on busy-waiting).
    # The distribution port listens where the AMQP one does.
    local erl_args="+sbwt none +sbwtdcpu none +sbwtdio none"
    erl_args+=" -kernel inet_dist_use_interface {127,0,0,1}"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=$erl_args \
    RABBITMQ_NODENAME=$node RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$port \
      RABBITMQ_DIST_PORT=$dist RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
      RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_PID_FILE="$dir/rabbit.pid" \
      RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
      rabbitmq-server -detached >/dev/null 2>&1
    local i
    for ((i = 0; i < 120; i++)); do
      rabbitmq-diagnostics -n "$node" -q check_port_connectivity >/dev/null 2>&1 && break
      sleep 0.5
    done
    ((i < 120)) || { svc_log "RabbitMQ did not start; see $dir/log"; return 1; }
  fi
  ensure_credentials "$credentials" trd
  rabbit_user "$node" "$credentials" \
    || { svc_log "RabbitMQ: could not set up TRD's user on $node"; return 1; }
  svc_log "RabbitMQ $node on 127.0.0.1:$port (data in $dir, credentials in $credentials)"
}

# Creates TRD's user on the node, or sets its password (a removed credentials file means a new
# one), gives it the default virtual host, and deletes `guest`, which a new node creates and
# an older TRD used. The password goes through standard input, never the command line.
rabbit_user() { # NODE_NAME CREDENTIALS_FILE
  local node=$1 file=$2 user users verb=add_user
  user=$(credential "$file" user)
  users=$(rabbitmqctl -n "$node" -q list_users --no-table-headers | cut -f1) || return 1
  ! grep -qx -- "$user" <<<"$users" || verb=change_password
  credential "$file" password | rabbitmqctl -n "$node" -q "$verb" "$user" >/dev/null || return 1
  rabbitmqctl -n "$node" -q set_permissions -p / "$user" '.*' '.*' '.*' >/dev/null || return 1
  if grep -qx guest <<<"$users"; then
    rabbitmqctl -n "$node" -q delete_user guest >/dev/null || return 1
  fi
}

stop_rabbit() { # NODE_NAME
  rabbitmqctl -n "$1" stop >/dev/null 2>&1 || true
}
