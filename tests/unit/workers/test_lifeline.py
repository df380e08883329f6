"""A replica dies with its parent: the watch on the control socket, the parent-death signal, and
the check for a parent that died before the signal was asked for."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from foretell.workers.lifeline import EXIT_PARENT_GONE, watch_parent

WITHIN_S = 10.0  # generous on a loaded machine; the tests wait for an event, not this long


def test_the_watch_fires_when_the_parents_end_closes_and_leaves_messages_unread() -> None:
    ours, parents = socket.socketpair()
    gone = threading.Event()
    with ours, parents:
        watcher = watch_parent(ours.fileno(), gone.set)
        parents.sendall(b"a message")
        # A message is not a hang-up; nothing can signal "did not fire", so wait a little.
        assert not gone.wait(0.2), "the watch took a message for the parent's end closing"
        parents.close()
        assert gone.wait(WITHIN_S), "the parent's end closed, yet the watch never fired"
        watcher.join(WITHIN_S)
        assert not watcher.is_alive()
        # The messages are the main thread's: the watch read none of them.
        assert ours.recv(100) == b"a message"


def blocked_signals(thread_id: int) -> int:
    """The signal mask of a thread of this process, from /proc."""
    with open(f"/proc/self/task/{thread_id}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16)
    raise AssertionError("no SigBlk in /proc")


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_the_watch_blocks_signals_so_an_interrupt_reaches_the_busy_main_thread() -> None:
    ours, parents = socket.socketpair()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    with ours, parents:
        watcher = watch_parent(ours.fileno(), lambda: None)
        assert watcher.native_id is not None
        mask = blocked_signals(watcher.native_id)
        for signum in (signal.SIGUSR1, signal.SIGINT, signal.SIGTERM):
            assert mask & (1 << (signum - 1)), signal.Signals(signum).name
        # The caller's own mask is as it was.
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
        parents.close()
        watcher.join(WITHIN_S)


def run(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True
    )


def test_a_child_whose_parent_is_already_gone_exits_at_once() -> None:
    """The parent-death signal comes only for a death after it was asked for: a child told of
    a parent that is not its parent now (re-parented: it died first) must not serve."""
    child = run(
        """
        from foretell.workers.lifeline import die_with_parent
        die_with_parent(1)  # pid 1 is not our parent: this test is
        print("still running")
        """
    )
    out, _ = child.communicate(timeout=WITHIN_S)
    assert child.returncode == EXIT_PARENT_GONE
    assert out == ""


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_is_killed_when_its_parent_is_even_while_busy_and_with_no_watch() -> None:
    # The parent spawns a child that asks for the signal and then sleeps (a busy model that
    # reads nothing), reports the child's pid, and waits to be killed.
    parent = run(
        """
        import subprocess, sys, time
        child = subprocess.Popen(
            [sys.executable, "-c", "import os, time\\n"
             "from foretell.workers.lifeline import die_with_parent\\n"
             "die_with_parent(os.getppid()); print('ready', flush=True); time.sleep(120)"],
            stdout=subprocess.PIPE, text=True,
        )
        assert child.stdout is not None and child.stdout.readline() == "ready\\n"
        print(child.pid, flush=True)
        time.sleep(120)
        """
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert alive(child)
        parent.kill()
        parent.wait(WITHIN_S)
        deadline = time.monotonic() + WITHIN_S
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not alive(child), "the child outlived its SIGKILLed parent"
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)
        parent.stdout.close()
