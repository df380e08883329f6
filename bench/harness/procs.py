"""Server processes for the benchmark: free ports, CPU pinning, process trees, RSS, clean stops."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
SERVER_CORE = 0  # every server and all of its children
CLIENT_CORE = 1  # wrk
STOP_GRACE_S = 5.0


def can_pin() -> bool:
    """True when cores 0 and 1 are both usable, so server and load generator never share one."""
    return {SERVER_CORE, CLIENT_CORE} <= os.sched_getaffinity(0)


def pinned(argv: list[str], core: int) -> list[str]:
    """`argv` under `taskset -c core`; unchanged on a machine with fewer than 2 usable cores."""
    return ["taskset", "-c", str(core), *argv] if can_pin() else argv


@contextlib.contextmanager
def pinned_here(core: int) -> Iterator[None]:
    """Pin this process to `core` for the block (the in-process limit runs where servers run)."""
    before = os.sched_getaffinity(0)
    if can_pin():
        os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, chosen by the OS."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _parent_map() -> dict[int, int]:
    """pid -> ppid for every process visible in /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            # The command name may hold spaces and parentheses: fields restart after the last ")".
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def process_tree(root: int) -> list[int]:
    """`root` and all of its descendants (children of children included)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parent_map().items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def rss_bytes(root: int) -> int:
    """Resident memory of `root` plus every descendant, summed from /proc/<pid>/status VmRSS."""
    total = 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024  # the kernel reports kB
    return total


def wait_for(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll `check` until it is true or `timeout_s` passes; whether it became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return check()


@dataclass
class Spawned:
    """One running server: its process, where it listens and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started_at: float  # time.perf_counter() just before the spawn

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's combined stdout/stderr, for error messages."""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no log)"


@contextlib.contextmanager
def spawned(
    name: str,
    argv: list[str],
    port: int,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[Spawned]:
    """Start `argv` pinned to the server core in a new session; stop its whole tree on exit."""
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            pinned(argv, SERVER_CORE),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            start_new_session=True,  # its own process group: one signal reaches every worker
        )
        try:
            yield Spawned(name, proc, port, log_path, started)
        finally:
            stop(proc)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL what is left after a grace period, reap the leader.

    Descendants are listed before signalling so that one which moved to its own session (some
    servers daemonise helpers) is still found and killed.
    """
    pgid = proc.pid  # start_new_session made the leader's pid the group id
    tree = process_tree(proc.pid)
    _signal_group(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_GRACE_S)
    if not wait_for(lambda: not _group_alive(pgid), timeout_s=STOP_GRACE_S / 2):
        _signal_group(pgid, signal.SIGKILL)
    for pid in tree[1:]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) != pgid:
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
