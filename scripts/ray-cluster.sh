#!/usr/bin/env bash
# A two-node Ray cluster on this machine, for foretell's replicas on Ray: the head on 127.0.0.2,
# a worker node on 127.0.0.3 (Linux routes all of 127.0.0.0/8 to the loopback device).
#
#   scripts/ray-cluster.sh up DIR          start whichever node is not running; writes DIR/env
#   scripts/ray-cluster.sh down DIR        stop both nodes (SIGTERM, then SIGKILL after a grace)
#   scripts/ray-cluster.sh kill DIR NODE   SIGKILL every process of NODE (head|worker): a node dying
#   scripts/ray-cluster.sh status DIR      which nodes run, by pid
#
# Then: `set -a; . DIR/env; set +a; foretell serve REPO --placement ray` (DIR/env holds
# FORETELL_RAY_ADDRESS and the token settings the server needs to join as a driver).
#
# Each node runs as `ray start --block` in a session of its own, recorded in DIR/NODE.pid: Ray
# puts its worker processes in process groups of their own but leaves them in that session, so
# stopping a node signals every process of its session, found in /proc. Never `ray stop`: it
# stops every Ray process of this user on the machine, other people's clusters included.
#
# Settings (environment): RAY_CLUSTER_CPUS per node (2), RAY_CLUSTER_OBJECT_STORE bytes per node
# (100000000), RAY_CLUSTER_PORT of the head's GCS (a free one), RAY_CLUSTER_RAY (the `ray` to
# run: the one next to this repository's .venv/bin/python, else on PATH).
set -euo pipefail

usage() {
  sed -n '4,8p' "$0" >&2
  exit 2
}

[[ $# -ge 2 ]] || usage
command=$1
dir=$2
here=$(cd "$(dirname "$0")/.." && pwd)
ray_bin=${RAY_CLUSTER_RAY:-}
if [[ -z $ray_bin ]]; then
  if [[ -x $here/.venv/bin/ray ]]; then ray_bin=$here/.venv/bin/ray; else ray_bin=$(command -v ray || true); fi
fi
cpus=${RAY_CLUSTER_CPUS:-2}
object_store=${RAY_CLUSTER_OBJECT_STORE:-100000000}
head_ip=127.0.0.2
worker_ip=127.0.0.3
# Ray's own usage reporting off, and token authentication explicitly on: a node listens on all
# interfaces, and without a token anyone who reaches a port could run code on it.
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=token
# Node death noticed within about 3 s rather than Ray's default of about 30: on one machine a
# missed health check means a killed node, not a slow network.
system_config='{"health_check_period_ms":1000,"health_check_timeout_ms":1000,"health_check_failure_threshold":3}'

# shellcheck source=scripts/sessions.sh
source "$here/scripts/sessions.sh"

node_pid() { if [[ -s $dir/$1.pid ]]; then cat "$dir/$1.pid"; fi; }

running() {
  local pid
  pid=$(node_pid "$1")
  [[ -n $pid ]] && [[ -n $(session_pids "$pid") ]]
}

signal_node() {  # NODE SIGNAL
  local pid
  pid=$(node_pid "$1")
  [[ -n $pid ]] || return 0
  session_pids "$pid" | xargs -r kill "-$2" 2>/dev/null || true
}

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("'"$1"'", 0)); print(s.getsockname()[1])'
}

# Start NODE in a new session; its pid, the session id, goes to DIR/NODE.pid.
start_node() {  # NODE ARGS...
  local node=$1
  shift
  local agent
  agent=$(free_port 127.0.0.1)
  rm -f "$dir/$node.pid" "$dir/$node.log"  # a killed node's: wait_started must see the new one
  # Fixed defaults (52365; the head's 8265) would collide with any other cluster on this machine.
  # shellcheck disable=SC2016  # $$ is the new session's shell: expanded there, on purpose
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$dir/$node.pid" \
    "$ray_bin" start --block --disable-usage-stats \
    --num-cpus="$cpus" --object-store-memory="$object_store" \
    --dashboard-agent-listen-port="$agent" --temp-dir="$dir/$node" "$@" \
    >"$dir/$node.log" 2>&1 </dev/null &
}

wait_started() {  # NODE: until `ray start` says it is up, or it exits
  local deadline=$((SECONDS + 120))
  while ! grep -q "block forever" "$dir/$1.log" 2>/dev/null; do
    if ((SECONDS > deadline)) || { [[ -s $dir/$1.pid ]] && ! running "$1"; }; then
      echo "ray-cluster: the $1 node did not start; the end of $dir/$1.log:" >&2
      tail -20 "$dir/$1.log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
}

up() {
  [[ -x $ray_bin ]] || {
    echo "ray-cluster: no ray found; install foretell's cluster extra (pip install -e '.[cluster]')" >&2
    exit 1
  }
  python=$(dirname "$(readlink -f "$ray_bin")")/python
  [[ -x $python ]] || python=$(command -v python3)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # Ray's unix sockets live under the temp dir, and a socket path holds at most 107 bytes.
  if ((${#dir} > 40)); then
    echo "ray-cluster: '$dir' is ${#dir} characters; use a folder of at most 40 (Ray's socket paths must fit in 107)" >&2
    exit 2
  fi
  if [[ ! -s $dir/auth_token ]]; then
    (umask 077 && "$python" -c 'import secrets; print(secrets.token_hex(32))' >"$dir/auth_token")
  fi
  export RAY_AUTH_TOKEN_PATH=$dir/auth_token
  local port
  if running head; then
    port=$(cat "$dir/port")
  else
    port=${RAY_CLUSTER_PORT:-$(free_port $head_ip)}
    echo "$port" >"$dir/port"
    start_node head --head --include-dashboard=false --node-ip-address=$head_ip --port="$port" \
      --dashboard-port="$(free_port 127.0.0.1)" --system-config="$system_config"
    wait_started head
  fi
  if ! running worker; then
    start_node worker --address="$head_ip:$port" --node-ip-address=$worker_ip
    wait_started worker
  fi
  cat >"$dir/env" <<EOF
FORETELL_RAY_ADDRESS=$head_ip:$port
RAY_AUTH_MODE=token
RAY_AUTH_TOKEN_PATH=$dir/auth_token
RAY_USAGE_STATS_ENABLED=0
EOF
  echo "ray-cluster: head $head_ip:$port (pid $(node_pid head)), worker $worker_ip (pid $(node_pid worker)); settings in $dir/env"
}

down() {
  local node deadline
  for node in worker head; do signal_node "$node" TERM; done
  # A node drains for up to 30 s on SIGTERM; nothing of ours needs that long.
  deadline=$((SECONDS + 10))
  while { running worker || running head; } && ((SECONDS < deadline)); do sleep 0.2; done
  for node in worker head; do
    signal_node "$node" KILL
    rm -f "$dir/$node.pid"
  done
  echo "ray-cluster: stopped"
}

case $command in
  up) up ;;
  down) down ;;
  kill)
    [[ $# -eq 3 && ($3 == head || $3 == worker) ]] || usage
    signal_node "$3" KILL
    echo "ray-cluster: killed the $3 node's processes"
    ;;
  status)
    for node in head worker; do
      if running "$node"; then echo "$node: running (pid $(node_pid "$node"))"; else echo "$node: stopped"; fi
    done
    ;;
  *) usage ;;
esac
