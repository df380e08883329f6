#!/usr/bin/env bash
# A throwaway PostgreSQL server in a folder of its own: for the tests, the cluster demo and humans.
#
#   scripts/postgres.sh install        Debian's postgresql package, if its binaries are missing
#   scripts/postgres.sh start DIR      new cluster in DIR, started; prints its URL (also in DIR/url)
#   scripts/postgres.sh stop DIR       stops DIR's server (the PID in DIR/data/postmaster.pid)
#   scripts/postgres.sh resume DIR     starts DIR's stopped server again, on the same port
#   scripts/postgres.sh url DIR        prints the URL of DIR's server
#
# The server listens on 127.0.0.1 only, on a free port (or $PORT), with its unix socket in DIR,
# never /var/run; it trusts every connection from 127.0.0.1 (user postgres, no password), so it
# is for tests and demos, not data anyone needs. fsync stays on: the tests check durability.
# It never touches a system cluster (/etc/postgresql, port 5432, pg_ctlcluster). As root, the
# server runs as the `postgres` system user (initdb refuses root), which must be able to reach
# DIR: a new folder under /tmp works.
set -euo pipefail

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

# The server's bin folder: $PG_BIN, else Debian's newest, else wherever initdb is on PATH
# (Homebrew, Fedora).
pg_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then
        echo "$PG_BIN"
        return
    fi
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1) || true
    if [[ -z "$found" || ! -x "$found/initdb" ]]; then
        found=$(dirname "$(command -v initdb)" 2>/dev/null) || return 1
    fi
    [[ -x "$found/initdb" ]] || return 1
    echo "$found"
}

install_server() {
    pg_bin >/dev/null && return 0
    # Another apt-get (an image's own, another engineer's) may hold a lock: apt.sh waits for it.
    "$(dirname "${BASH_SOURCE[0]}")/apt.sh" postgresql
    pg_bin >/dev/null || die "installed postgresql, yet no /usr/lib/postgresql/*/bin/initdb"
}

# Runs a server binary as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts DIR's cluster on PORT. Options on the command line win over postgresql.conf; nothing
# else is read.
run_server() {
    local bin=$1 dir=$2 port=$3
    as_owner "$bin/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w -t 60 -s -o "\
        -c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' \
        -c fsync=on -c synchronous_commit=on -c full_page_writes=on \
        -c shared_buffers=32MB -c max_connections=200 -c max_wal_size=256MB" >&2
}

start() {
    local dir=$1 bin
    bin=$(pg_bin) || die "no PostgreSQL server installed: run 'scripts/postgres.sh install' (or make test)"
    [[ ! -e "$dir/data" ]] || die "$dir/data exists: stop and remove that cluster first, or pick another folder"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ "$(id -u)" == 0 ]]; then
        getent passwd postgres >/dev/null || die "no 'postgres' user to run the server as (it comes with Debian's postgresql package)"
        chown postgres: "$dir"
        runuser -u postgres -- test -w "$dir" ||
            die "user postgres cannot write to $dir (a parent folder closed to others?): pick a folder under /tmp"
    fi
    # --no-sync: a throwaway cluster's files need not reach the disk before it starts; the
    # server itself runs with fsync on.
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
        die "initdb failed: $(tail -n 20 "$dir/initdb.log")"
    local port tries=0
    while :; do
        port=${PORT:-$(free_port)}
        if run_server "$bin" "$dir" "$port"; then
            break
        fi
        tries=$((tries + 1))
        # Another process may take the free port between our look and the server's bind.
        if [[ -n "${PORT:-}" || $tries -ge 5 ]] || ! grep -q "could not bind" "$dir/server.log"; then
            die "the server did not start: $(tail -n 20 "$dir/server.log")"
        fi
    done
    echo "postgresql://postgres@127.0.0.1:$port/postgres" >"$dir/url"
    cat "$dir/url"
}

stop() {
    local dir=$1 bin
    [[ -f "$dir/data/postmaster.pid" ]] || return 0  # not running
    bin=$(pg_bin) || die "no PostgreSQL binaries to stop $dir with"
    # pg_ctl signals the PID in DIR/data/postmaster.pid: this server, never another.
    as_owner "$bin/pg_ctl" stop -D "$dir/data" -m fast -w -t 60 -s >&2
}

# Starts a stopped cluster again where its URL says (what a database restart looks like to a
# client that keeps the URL).
resume() {
    local dir=$1 bin url port
    bin=$(pg_bin) || die "no PostgreSQL binaries to start $dir with"
    [[ -f "$dir/url" && -d "$dir/data" ]] || die "no cluster in $dir: 'start DIR' makes one"
    [[ ! -f "$dir/data/postmaster.pid" ]] || die "$dir's server is running: stop it first"
    dir=$(cd "$dir" && pwd)
    url=$(cat "$dir/url")
    port=${url##*:}
    port=${port%%/*}
    run_server "$bin" "$dir" "$port" || die "the server did not start again: $(tail -n 20 "$dir/server.log")"
}

case "${1:-}" in
install) install_server ;;
start)
    [[ $# -eq 2 ]] || die "usage: $0 start DIR"
    start "$2"
    ;;
stop)
    [[ $# -eq 2 ]] || die "usage: $0 stop DIR"
    stop "$2"
    ;;
resume)
    [[ $# -eq 2 ]] || die "usage: $0 resume DIR"
    resume "$2"
    ;;
url)
    [[ $# -eq 2 ]] || die "usage: $0 url DIR"
    cat "$2/url"
    ;;
*) die "usage: $0 install | start DIR | stop DIR | resume DIR | url DIR" ;;
esac
