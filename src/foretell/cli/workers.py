"""`foretell serve --workers N`: N API processes sharing one listening socket, supervised here.

Each worker is a whole server (its own lifespan, instance id and leases, its own replicas of every
model) started fresh by multiprocessing's spawn; they share nothing but the socket, whose
connections the kernel hands to whichever accepts first, and the store. This process only
listens for signals and keeps N alive: SIGTERM or SIGINT stops them gracefully (each drains as a
single server does), SIGHUP is passed on to each (each reads the model repository again, as it
serves its own deployments); one that dies is started again, after a pause that grows while they
keep dying. A worker dies with this process, even by SIGKILL (the kernel's parent-death signal), so
none outlives its server.

Not uvicorn's own --workers: its children run plain uvicorn.Server (not api.server's, which
starts the predictions' stop at the signal) and must rebuild the app from an import string.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

import uvicorn

from foretell.config import Settings

log = logging.getLogger("foretell")

Serve = Callable[[Settings, list[socket.socket]], None]

RESTART_FIRST_S = 1.0  # a worker that died is started again after this, doubling while they die
RESTART_MAX_S = 30.0
HEALTHY_S = 60.0  # a worker that lived this long resets the pause
STOP_MARGIN_S = 15.0  # past a worker's own grace, it is killed
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def serve_workers(settings: Settings, workers: int, serve: Serve) -> None:
    """Run `serve(settings, [socket])` in `workers` processes until SIGTERM or SIGINT."""
    # uvicorn's own binding (SO_REUSEADDR, IPv6, its log line); the app is never loaded here.
    sock = uvicorn.Config(app="foretell", host=settings.host, port=settings.port).bind_socket()
    Supervisor(settings, workers, serve, sock).run()


class Supervisor:
    def __init__(self, settings: Settings, workers: int, serve: Serve, sock: socket.socket) -> None:
        self._settings = settings
        self._serve = serve
        self._sock = sock
        self._context = multiprocessing.get_context("spawn")
        self._slots: list[_Slot] = [_Slot() for _ in range(workers)]
        self._stop = threading.Event()

    def run(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self._forward(signal.SIGHUP))
        log.info("starting %d API worker processes", len(self._slots))
        try:
            while not self._stop.is_set():
                for slot in self._slots:
                    self._keep(slot)
                self._stop.wait(0.2)
        finally:
            self._stop_all()

    def _forward(self, signum: signal.Signals) -> None:
        running = [s.process for s in self._slots if s.process is not None and s.process.is_alive()]
        log.info("passing %s on to %d API worker processes", signum.name, len(running))
        for process in running:
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def _keep(self, slot: _Slot) -> None:
        now = time.monotonic()
        process = slot.process
        if process is not None and process.is_alive():
            return
        if process is not None:
            lived_s = now - slot.started
            slot.pause_s = RESTART_FIRST_S if lived_s >= HEALTHY_S else slot.pause_s * 2
            slot.pause_s = min(slot.pause_s, RESTART_MAX_S)
            slot.not_before = now + slot.pause_s
            log.error(
                "API worker %s exited (code %s) after %.0f s; starting another in %g s",
                process.pid,
                process.exitcode,
                lived_s,
                slot.pause_s,
            )
            slot.process = None
        if now < slot.not_before:
            return
        slot.process = self._context.Process(
            target=_worker,
            args=(self._serve, self._settings, [self._sock], os.getpid()),
            name="foretell-api",
        )
        slot.process.start()
        slot.started = now

    def _stop_all(self) -> None:
        running = [s.process for s in self._slots if s.process is not None]
        for process in running:
            if process.pid is not None and process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._settings.shutdown_grace_s + STOP_MARGIN_S
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("API worker %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
        self._sock.close()


class _Slot:
    """One of the N places a worker runs in."""

    def __init__(self) -> None:
        self.process: BaseProcess | None = None
        self.started = 0.0
        self.pause_s = RESTART_FIRST_S / 2
        self.not_before = 0.0


def _worker(
    serve: Serve, settings: Settings, sockets: list[socket.socket], parent_pid: int
) -> None:
    """A worker's body, in its new process."""
    _die_with_parent(parent_pid)
    serve(settings, sockets)


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this worker when the supervisor dies (Linux), as it kills a
    replica with its server (workers.lifeline, which the CLI may not import)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the supervisor died before the prctl
        os._exit(1)
