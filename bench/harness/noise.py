"""How much of each pinned core other processes took during a run: the machine's noise.

On a shared 2-core machine another job landing on core 0 halves a server's throughput and
nothing else in the output would say so. Core 0's busy time minus the CPU time of the server's
own process tree is what others used there; core 1's busy time minus wrk's own CPU is what
others used on the client core. Both come from /proc in clock ticks.
"""

from __future__ import annotations

import contextlib
import os
import resource
from dataclasses import dataclass
from pathlib import Path

from harness.procs import CLIENT_CORE, SERVER_CORE, process_tree

TICKS = os.sysconf("SC_CLK_TCK")
NOISY = 0.10  # above this share of a core taken by others, a run is marked as disturbed


def _core_times(core: int) -> tuple[int, int]:
    """(busy, total) clock ticks of one core since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(x) for x in line.split()[1:]]
            idle = ticks[3] + ticks[4]  # idle + iowait
            return sum(ticks) - idle, sum(ticks)
    return 0, 0


def _tree_ticks(root: int) -> int:
    """utime + stime of `root` and its descendants, in clock ticks."""
    total = 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # stat fields 14 and 15
    return total


def _children_ticks() -> int:
    """CPU of this process's reaped children (wrk, once it has exited), in clock ticks."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * TICKS)


@dataclass(frozen=True)
class Snapshot:
    server: tuple[int, int]
    client: tuple[int, int]
    server_tree: int
    children: int


def snapshot(server_pid: int) -> Snapshot:
    """Take before a wrk run; pass to `others_share` after it."""
    return Snapshot(
        _core_times(SERVER_CORE),
        _core_times(CLIENT_CORE),
        _tree_ticks(server_pid),
        _children_ticks(),
    )


def server_cpu_s(before: Snapshot, after: Snapshot) -> float:
    """CPU seconds (user + system) the server's process tree used between two snapshots."""
    return (after.server_tree - before.server_tree) / TICKS


def others_share(before: Snapshot, after: Snapshot) -> tuple[float, float]:
    """Share (0 to 1) of core 0 and of core 1 that other processes used between snapshots."""

    def share(core_before: tuple[int, int], core_after: tuple[int, int], own: int) -> float:
        busy, total = (core_after[i] - core_before[i] for i in (0, 1))
        return max(0.0, (busy - own) / total) if total > 0 else 0.0

    server = share(before.server, after.server, after.server_tree - before.server_tree)
    client = share(before.client, after.client, after.children - before.children)
    return server, client
