# shellcheck shell=bash
# Sourced by cluster.sh and ray-cluster.sh: what each stops is found by its session id, never by
# a process name, so nothing else on a shared machine is touched.

# Pids of the live processes whose session id is $1.
session_pids() {
  local stat rest fields
  for stat in /proc/[0-9]*/stat; do
    rest=$(cat "$stat" 2>/dev/null) || continue
    rest=${rest##*) } # after "pid (comm) ": state ppid pgrp session ...
    read -ra fields <<<"$rest"
    if [[ ${fields[3]} == "$1" && ${fields[0]} != Z ]]; then
      stat=${stat#/proc/}
      echo "${stat%/stat}"
    fi
  done
}
