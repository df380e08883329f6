"""A replica process dies with its server: the kernel's parent-death signal and a watch on the pipe.

A server killed with SIGKILL runs no cleanup. Its busy replica would be re-parented to init and
go on with its batch while the restarted server runs the same predictions again: the model's side
effects twice. Two guards, since neither covers every case alone:

- PR_SET_PDEATHSIG (Linux): the kernel SIGKILLs the replica when its parent dies, even while the
  model holds the GIL in C code. It fires when the *thread* that spawned the replica exits, not
  the process: ProcessReplica spawns from the event loop's thread, which lives as long as the
  server. A parent that died before the prctl sends no signal: the parent pid check covers that.
- A thread watching the control socket for the parent's end to close: needs no Linux, and
  notices a parent gone while the main thread is busy in the model's predict.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
from collections.abc import Callable

# <linux/prctl.h>
_PR_SET_PDEATHSIG = 1
# Nobody waits for an orphan's status; this one tells a reader of strace or a core dump why.
EXIT_PARENT_GONE = 1
# The parent's end is closed: POLLHUP is always reported; POLLRDHUP (Linux) says it earlier for a
# socket. POLLIN is not asked for: the messages are the main thread's to read.
_HANGUP = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux; elsewhere the pipe watch
    alone covers it); exit now if `parent_pid` is already gone, as no signal would come."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    if os.getppid() != parent_pid:  # re-parented already: the parent died before the prctl
        os._exit(EXIT_PARENT_GONE)


def _exit() -> None:
    os._exit(EXIT_PARENT_GONE)


def watch_parent(fd: int, on_gone: Callable[[], None] = _exit) -> threading.Thread:
    """Call `on_gone` (by default: exit at once) when the parent's end of the socket `fd`
    closes, whatever the main thread is doing; returns the watching (daemon) thread."""
    watcher = threading.Thread(
        target=_watch, args=(fd, on_gone), name="foretell-lifeline", daemon=True
    )
    # The thread starts with every signal blocked, so that the kernel delivers the parent's
    # INTERRUPT to the main thread, whose sleep or read it must cut short (a signal taken by
    # this thread would wait for the main thread to come back to Python by itself).
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        watcher.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return watcher


def _watch(fd: int, on_gone: Callable[[], None]) -> None:
    poller = select.poll()
    poller.register(fd, _HANGUP)
    while True:
        for _, events in poller.poll():
            if events & select.POLLNVAL:
                return  # this process closed its own end: it is on its way out anyway
            if events & _HANGUP:
                on_gone()
                return
