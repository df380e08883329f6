#!/usr/bin/env bash
# Installs Debian packages with apt-get (through sudo unless already root), waiting for another
# apt (an image's own, another engineer's) to let go of its lock instead of failing at once.
#   scripts/apt.sh PACKAGE...       install; `apt-get update` first only if that fails
# APT_LOCK_WAIT_S (default 600) bounds each wait. apt-get's output goes to stderr, so a script
# that prints a value on stdout (postgres.sh) can call this.
set -euo pipefail

wait_s=${APT_LOCK_WAIT_S:-600}
apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$wait_s" -y -q)
[[ "$(id -u)" == 0 ]] || apt=(sudo "${apt[@]}")

# DPkg::Lock::Timeout covers dpkg's locks, not the package lists' lock that `apt-get update`
# takes (apt 2.6 fails on it at once): retry while another apt holds that one.
update() {
    local deadline=$((SECONDS + wait_s)) out
    until out=$("${apt[@]}" update 2>&1); do
        if [[ "$out" != *"Could not get lock"* ]] || ((SECONDS >= deadline)); then
            echo "$out" >&2
            return 1
        fi
        sleep 2
    done
    echo "$out" >&2
}

(($# > 0)) || { echo "usage: scripts/apt.sh PACKAGE..." >&2; exit 2; }
"${apt[@]}" install "$@" >&2 || { update && "${apt[@]}" install "$@" >&2; }
