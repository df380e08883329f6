#!/usr/bin/env bash
# foretell scaled out, on one machine: PostgreSQL, a two-node Ray cluster and two API processes.
#
#   scripts/cluster.sh up [DIR]       start whatever of it is not running; waits until it serves
#   scripts/cluster.sh down [DIR]     stop all of it, each part by its own PIDs
#   scripts/cluster.sh status [DIR]   which parts run
#   scripts/cluster.sh demo [DIR]     up, then 500 predictions across both API processes while a
#                                     Ray node and an API process are SIGKILLed (cluster_demo.py)
#
# DIR (default ./.foretell/cluster; at most 36 characters as an absolute path, for Ray's socket
# paths) holds everything: pg/ (scripts/postgres.sh: 127.0.0.1, a free port), ray/
# (scripts/ray-cluster.sh: head 127.0.0.2, worker node 127.0.0.3, token auth; ray/env has the
# settings a server needs), api-N/ (each API process's data dir: api-1/admin-key is the admin
# key), api-N.pid, api-N.port and api-N.log, and runs/runs.log (the demo model's completions).
#
# Each API process is `foretell serve REPO --db <pg> --ray-address <head> --port P` in a session
# of its own (its PID, also its process group and session, in DIR/api-N.pid), joined to the Ray
# cluster as a driver. Stopping signals those sessions, PostgreSQL's postmaster and the Ray nodes'
# sessions: never `ray stop`, never a kill by process name.
#
# Settings (environment): CLUSTER_PORTS ("8081 8082": one API process each), CLUSTER_REPO
# (examples/cluster: demo/counts-runs, two replicas on Ray spread over the nodes),
# FORETELL_LEASE_S (5: how long a dead API process's work waits before another takes it; the
# server's own default is 15), FORETELL_MAX_RERUNS (0: a prediction that was running when its
# API process died fails as internal instead of running again); DEMO_COUNT (500), and the rest
# in scripts/cluster_demo.py.
set -euo pipefail

usage() {
  sed -n '4,8p' "$0" >&2
  exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
command=$1
dir=${2:-./.foretell/cluster}
here=$(cd "$(dirname "$0")/.." && pwd)
ports=${CLUSTER_PORTS:-8081 8082}
repo=${CLUSTER_REPO:-$here/examples/cluster}
if [[ -x $here/.venv/bin/foretell ]]; then
  bin=$here/.venv/bin
else
  bin=$(dirname "$(command -v foretell || echo /nonexistent/foretell)")
fi
# Ray's usage reporting off and its authentication explicit, for every Ray process started from
# here (ray-cluster.sh sets the same, and writes them to ray/env for the servers).
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=token
export FORETELL_LEASE_S=${FORETELL_LEASE_S:-5} FORETELL_MAX_RERUNS=${FORETELL_MAX_RERUNS:-0}
READY_TIMEOUT_S=${CLUSTER_READY_TIMEOUT_S:-300}

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

# shellcheck source=scripts/sessions.sh
source "$here/scripts/sessions.sh"

api_pid() { if [[ -s $dir/api-$1.pid ]]; then cat "$dir/api-$1.pid"; fi; }

api_running() {
  local pid
  pid=$(api_pid "$1")
  [[ -n $pid ]] && [[ -n $(session_pids "$pid") ]]
}

pg_running() {
  local pid
  [[ -s $dir/pg/data/postmaster.pid ]] || return 1
  pid=$(head -n 1 "$dir/pg/data/postmaster.pid")
  kill -0 "$pid" 2>/dev/null
}

start_postgres() {
  if pg_running; then
    return
  elif [[ -d $dir/pg/data ]]; then
    # Stopped (or killed: a stale postmaster.pid is PostgreSQL's own to judge on start).
    rm -f "$dir/pg/data/postmaster.pid"
    "$here/scripts/postgres.sh" resume "$dir/pg"
  else
    "$here/scripts/postgres.sh" install
    "$here/scripts/postgres.sh" start "$dir/pg" >/dev/null
  fi
}

# Start API process N on PORT in a new session; its pid, the session id, goes to DIR/api-N.pid.
start_api() { # N PORT DB
  local n=$1 port=$2 db=$3
  mkdir -p "$dir/api-$n"
  rm -f "$dir/api-$n.pid"
  echo "$port" >"$dir/api-$n.port"
  # The server is no child of this script (the outer subshell exits at once): it outlives it,
  # and its death is no job of ours to report.
  # shellcheck disable=SC2016  # $$ is the new session's shell: expanded there, on purpose
  ( (
    set -a
    # shellcheck source=/dev/null  # written by ray-cluster.sh up
    . "$dir/ray/env"
    set +a
    exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$dir/api-$n.pid" \
      "$bin/foretell" serve "$repo" --host 127.0.0.1 --port "$port" --db "$db" \
      --ray-address "$FORETELL_RAY_ADDRESS" --data-dir "$dir/api-$n" \
      >>"$dir/api-$n.log" 2>&1 </dev/null
  ) & )
  local deadline=$((SECONDS + 10))
  until [[ -s $dir/api-$n.pid ]]; do
    ((SECONDS < deadline)) || die "API process $n did not start; see $dir/api-$n.log"
    sleep 0.05
  done
}

# Until API process N answers /health/ready with 200 (no model still loading); a model that
# failed to load is an error, with the end of the process's log.
wait_ready() { # N
  local n=$1 port body deadline=$((SECONDS + READY_TIMEOUT_S))
  port=$(cat "$dir/api-$n.port")
  while :; do
    api_running "$n" || die "API process $n exited; the end of $dir/api-$n.log:
$(tail -n 30 "$dir/api-$n.log")"
    if body=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/health/ready" 2>/dev/null); then
      break
    fi
    ((SECONDS < deadline)) || die "API process $n not ready after ${READY_TIMEOUT_S} s; see $dir/api-$n.log"
    sleep 0.2
  done
  if [[ $body =~ \"failed\":\ *([0-9]+) && ${BASH_REMATCH[1]} != 0 ]]; then
    die "API process $n serves, but a model failed to load ($body); the end of $dir/api-$n.log:
$(tail -n 30 "$dir/api-$n.log")"
  fi
}

# Until API process N answers at all: it has made (or found) the admin key by then.
wait_live() { # N
  local n=$1 port deadline=$((SECONDS + READY_TIMEOUT_S))
  port=$(cat "$dir/api-$n.port")
  until curl -fsS --max-time 5 "http://127.0.0.1:$port/health/live" >/dev/null 2>&1; do
    api_running "$n" || die "API process $n exited; the end of $dir/api-$n.log:
$(tail -n 30 "$dir/api-$n.log")"
    ((SECONDS < deadline)) || die "API process $n not answering after ${READY_TIMEOUT_S} s; see $dir/api-$n.log"
    sleep 0.2
  done
}

up() {
  [[ -x $bin/foretell ]] || die "no foretell found: run 'make test' (or pip install -e '.[postgres,cluster]')"
  [[ -x $bin/ray ]] || die "no ray next to $bin/foretell: install foretell's cluster extra (pip install -e '.[cluster]')"
  mkdir -p "$dir/runs"
  dir=$(cd "$dir" && pwd)
  # The demo model finds its log through the environment its Ray node gives it (set before the
  # nodes start; a node started earlier keeps what it had).
  export FORETELL_DEMO_RUNS=$dir/runs
  start_postgres
  local db
  db=$(cat "$dir/pg/url")
  RAY_CLUSTER_RAY=$bin/ray "$here/scripts/ray-cluster.sh" up "$dir/ray" >/dev/null
  local n=0 port started=()
  for port in $ports; do
    n=$((n + 1))
    if ! api_running "$n"; then
      start_api "$n" "$port" "$db"
      started+=("$n")
      # The first process to answer makes the admin key; the next ones find it in the store.
      wait_live "$n"
    fi
  done
  for n in "${started[@]}"; do wait_ready "$n"; done
  status
}

stop_api() { # N
  local n=$1 pid deadline
  pid=$(api_pid "$n")
  [[ -n $pid ]] || return 0
  # SIGTERM to its process group: the server lets running predictions finish for its
  # shutdown grace (10 s) and puts the rest back for another process to take at once.
  kill -TERM -- "-$pid" 2>/dev/null || true
  deadline=$((SECONDS + 20))
  while [[ -n $(session_pids "$pid") ]] && ((SECONDS < deadline)); do sleep 0.2; done
  session_pids "$pid" | xargs -r kill -KILL 2>/dev/null || true
  rm -f "$dir/api-$n.pid"
}

down() {
  [[ -d $dir ]] || return 0
  local n count
  count=$(wc -w <<<"$ports")
  for ((n = 1; n <= count; n++)); do stop_api "$n" & done
  wait
  if [[ -d $dir/ray ]]; then "$here/scripts/ray-cluster.sh" down "$dir/ray" >/dev/null; fi
  if [[ -d $dir/pg ]]; then "$here/scripts/postgres.sh" stop "$dir/pg"; fi
  echo "cluster: stopped (its files stay in $dir)"
}

status() {
  local n=0 port
  if pg_running; then echo "postgresql: running ($(cat "$dir/pg/url"))"; else echo "postgresql: stopped"; fi
  if [[ -d $dir/ray ]]; then
    "$here/scripts/ray-cluster.sh" status "$dir/ray" | sed 's/^/ray /'
  else
    echo "ray: not started"
  fi
  for port in $ports; do
    n=$((n + 1))
    if api_running "$n"; then
      echo "api-$n: running on http://127.0.0.1:$(cat "$dir/api-$n.port") (pid $(api_pid "$n"))"
    else
      echo "api-$n: stopped"
    fi
  done
}

demo() {
  up
  local python=$bin/python
  [[ -x $python ]] || python=$(command -v python3)
  "$python" "$here/scripts/cluster_demo.py" "$dir"
}

case $command in
  up) up ;;
  down) down ;;
  status)
    [[ -d $dir ]] || die "no cluster in $dir"
    dir=$(cd "$dir" && pwd)
    status
    ;;
  demo) demo ;;
  *) usage ;;
esac
