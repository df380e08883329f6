"""The parent's handle on one replica process: start it, send it batches, notice when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

from foretell.errors import ModelLoadFailed, WorkerCrashed
from foretell.manifest import ModelVersion, Signature
from foretell.workers import child
from foretell.workers.logs import LOGS_CAP
from foretell.workers.protocol import (
    LARGE_MESSAGE_BYTES,
    Chunk,
    Done,
    Large,
    Outcome,
    Predict,
    Ready,
    Setup,
    SetupFailed,
    Shutdown,
    ToParent,
)

# A fresh interpreter running only the worker module: not fork (the parent runs an event loop
# and threads a forked child must not inherit), and not multiprocessing's spawn, which imports
# the parent's __main__ (the whole CLI, FastAPI and uvicorn) into every replica: measured 93 MB
# for the text-stats replica that way.
WORKER_COMMAND = (sys.executable, "-m", "foretell.workers")
_batch_ids = itertools.count(1)


class ProcessReplica:
    """One worker process serving one model version; runs one batch at a time.

    `command` starts the process, given FD PARENT_PID MODEL after it (see `child.main`);
    `logs_cap` is the characters of one input's prints it keeps (max_prediction_logs_chars)."""

    def __init__(
        self,
        version: ModelVersion,
        command: Sequence[str] = WORKER_COMMAND,
        logs_cap: int = LOGS_CAP,
    ) -> None:
        self.version = version
        self._command = tuple(command)
        self._logs_cap = logs_cap
        # The running batch's chunks go here as they arrive (see predict).
        self._on_chunk: Callable[[Chunk], None] | None = None
        self.setup_time = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._tmpdir: str | None = None
        self._inbox: asyncio.Queue[ToParent | None] = asyncio.Queue()
        # Large messages being sent or read on threads (see LARGE_MESSAGE_BYTES), and the
        # connection whose reader is off while one is read.
        self._transfers: set[asyncio.Future[Any]] = set()
        self._paused: Connection | None = None
        self._busy = False
        self._batch_id = 0
        self.on_exit: Callable[[], None] = lambda: None

    @property
    def alive(self) -> bool:
        process, conn = self._process, self._conn
        if process is None or conn is None or conn.closed or process.poll() is not None:
            return False
        # An idle worker never writes: its end readable means EOF, i.e. it is dying (its pipe
        # closes before the kernel lets us reap it) and must not be sent a batch.
        return self._busy or not _readable(conn)

    async def start(self) -> Signature:
        """Spawn the process and run setup; raises ModelLoadFailed with the model's reason."""
        await self.stop()  # a replacement: close the old pipe before opening a new one
        self._inbox = asyncio.Queue()  # nothing from a previous process may answer this one
        self._busy = False
        parent, child_end = multiprocessing.Pipe(duplex=True)
        fd = child_end.fileno()
        # The model's name in the command line is for `ps` and whoever reads it.
        args = [*self._command, str(fd), str(os.getpid()), str(self.version.ref)]
        # Spawned on the event loop's thread, not a pool's: the replica's parent-death signal
        # fires when the thread that spawned it exits (see lifeline.py), and this one lives as
        # long as the server. Popen returns once the child has exec'd: measured 0.3 ms.
        # The process's own TMPDIR, for its inputs' local copies and the model's own temporary
        # files: a process killed mid-prediction never removes them itself, so stop() does.
        self._tmpdir = tempfile.mkdtemp(prefix="foretell-replica-")
        process = _spawn(args, fd, self._tmpdir)
        child_end.close()
        self._process, self._conn = process, parent
        asyncio.get_running_loop().add_reader(parent.fileno(), self._on_readable)
        # uvloop's add_reader makes the socket non-blocking; then a message larger than the
        # socket buffer (a batch of embeddings) failed half-read with EAGAIN, which looked like
        # the replica dying. Readiness still comes from the loop; each message is read whole.
        os.set_blocking(parent.fileno(), True)
        timeout = self.version.manifest.timeouts.setup_s
        try:
            parent.send(Setup(self.version, self._logs_cap))
            async with asyncio.timeout(timeout):
                message = await self._inbox.get()
        except TimeoutError:
            await self.stop()
            raise ModelLoadFailed(
                str(self.version.ref), f"setup took longer than {timeout:g} s"
            ) from None
        except OSError:  # it died before reading Setup (TimeoutError is an OSError: after it)
            await self.stop()
            raise ModelLoadFailed(str(self.version.ref), self._exit_reason()) from None
        if isinstance(message, Ready):
            self.setup_time = message.setup_time
            return message.signature
        await self.stop()
        if isinstance(message, SetupFailed):
            raise ModelLoadFailed(str(self.version.ref), message.reason, message.traceback)
        raise ModelLoadFailed(str(self.version.ref), self._exit_reason())

    async def predict(
        self, inputs: Sequence[dict[str, Any]], on_chunk: Callable[[Chunk], None] | None = None
    ) -> list[Outcome]:
        """Run one batch; raises WorkerCrashed if the process dies or overruns its timeout.
        `on_chunk` gets the batch's Chunks (streamed items, printed lines) as they arrive."""
        if self._conn is None or not self.alive:
            await self.stop()
            raise WorkerCrashed(str(self.version.ref), self._exitcode())
        batch_id = self._batch_id = next(_batch_ids)
        conn = self._conn
        data = ForkingPickler.dumps(
            Predict(batch_id, list(inputs), on_chunk is not None)
        )  # as conn.send would
        large = len(data) >= LARGE_MESSAGE_BYTES
        try:
            if not large:
                conn.send_bytes(data)
        except OSError:  # the process died since the check above
            await self.stop()
            raise WorkerCrashed(str(self.version.ref), self._exitcode()) from None
        timeout = self.version.manifest.timeouts.predict_s
        self._busy = True
        self._on_chunk = on_chunk
        try:
            async with asyncio.timeout(timeout):
                if large:
                    await self._send_large(conn, data)
                message = await self._inbox.get()
        except TimeoutError:
            # A model stuck past its timeout cannot be interrupted safely: replace the process.
            await self.stop()
            reason = (
                f"model '{self.version.ref}' ran longer than its {timeout:g} s limit "
                "(timeouts.predict_s); its replica was restarted"
            )
            raise WorkerCrashed(str(self.version.ref), None, reason) from None
        except OSError:  # the process died while a large batch was being sent
            await self.stop()
            raise WorkerCrashed(str(self.version.ref), self._exitcode()) from None
        finally:
            self._on_chunk = None
        # Cleared only on a reply: canceled while waiting (shutdown) means it is still busy.
        self._busy = False
        if isinstance(message, Done) and message.batch_id == batch_id:
            return message.outcomes
        await self.stop()
        raise WorkerCrashed(str(self.version.ref), self._exitcode())

    def interrupt(self) -> bool:
        """Signal the running batch to stop; kill the process if it has not within the grace."""
        process = self._process
        if not self._busy or process is None or not self.alive:
            return False
        os.kill(process.pid, child.INTERRUPT)
        grace = self.version.manifest.timeouts.cancel_grace_s
        asyncio.get_running_loop().call_later(grace, self._kill_if_running, self._batch_id)
        return True

    def _kill_if_running(self, batch_id: int) -> None:
        # Killed, the process closes its pipe end: predict() sees EOF and raises WorkerCrashed,
        # and the scheduler starts a replacement.
        if self._busy and self._batch_id == batch_id and self._process is not None:
            self._process.kill()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Ask the process to exit, then kill it if it does not within grace_s. A replica busy
        at shutdown is killed at once: the service has already re-queued its work."""
        process, conn = self._process, self._conn
        if process is None or conn is None or conn.closed:
            await self._remove_tmpdir()  # a spawn that failed, or already stopped
            return
        if self._busy:
            grace_s = 0.0
        self._detach()
        if not self._transfers:  # else a batch may be half-sent: a Shutdown would land inside it
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(Shutdown())
        await asyncio.to_thread(_wait, process, grace_s)
        if process.poll() is None:
            process.kill()
            await asyncio.to_thread(_wait, process, 5.0)
        await self._end_transfers(conn)
        conn.close()
        await self._remove_tmpdir()

    async def _remove_tmpdir(self) -> None:
        # Called once the process is gone: whether stopped, timed out, killed or found dead
        # (the dispatcher replaces a dead replica at once, and start() stops the old process).
        directory, self._tmpdir = self._tmpdir, None
        if directory is not None:  # off the loop: a model may leave many or large files
            await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)

    def _on_readable(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            message = conn.recv()
        except (EOFError, OSError):
            self._lost()
            return
        if type(message) is Large:
            self._receive_large(conn, message.nbytes)
            return
        if type(message) is Chunk:
            self._chunk(message)
            return
        self._inbox.put_nowait(message)

    def _chunk(self, chunk: Chunk) -> None:
        # Straight to the caller, never the inbox, which holds the batch's one answer. One of
        # a batch that ended (its predict timed out or was canceled) has nowhere to go.
        on_chunk = self._on_chunk
        if on_chunk is not None and chunk.batch_id == self._batch_id:
            on_chunk(chunk)

    def _lost(self) -> None:
        self._detach()
        self._inbox.put_nowait(None)
        if self._process is not None:
            self._process.poll()  # reap it now: no zombie waits for the next batch
        self.on_exit()

    async def _send_large(self, conn: Connection, data: memoryview) -> None:
        """Send pickled `data` on a thread; the loop serves other requests meanwhile."""
        sending = asyncio.get_running_loop().run_in_executor(None, conn.send_bytes, data)
        self._track(sending)
        # Shielded: a canceled predict leaves the thread writing, and stop() waits for it.
        await asyncio.shield(sending)

    def _receive_large(self, conn: Connection, nbytes: int) -> None:
        # The payload follows the marker: read and unpickled on a thread, the loop's reader off
        # meanwhile (it would fire for the payload's bytes), back on once it is in the inbox.
        loop = asyncio.get_running_loop()
        loop.remove_reader(conn.fileno())
        self._paused = conn
        receiving = loop.run_in_executor(None, _receive, conn, nbytes)
        self._track(receiving)
        receiving.add_done_callback(functools.partial(self._received, conn))

    def _received(self, conn: Connection, receiving: asyncio.Future[Any]) -> None:
        paused = self._paused is conn  # else stop() or start() took the connection meanwhile
        if paused:
            self._paused = None
        if receiving.cancelled() or receiving.exception() is not None:
            if paused:
                self._lost()  # the process died mid-message (EOF) or sent garbage
            elif conn is self._conn:
                self._inbox.put_nowait(None)  # stopped meanwhile: predict must not wait on
            return
        if conn is not self._conn:
            return  # a replacement's inbox is not this process's
        message = receiving.result()
        if type(message) is Chunk:
            self._chunk(message)
        else:
            self._inbox.put_nowait(message)
        if paused and not conn.closed:
            asyncio.get_running_loop().add_reader(conn.fileno(), self._on_readable)
            os.set_blocking(conn.fileno(), True)  # uvloop's add_reader unset it (see start)

    def _track(self, transfer: asyncio.Future[Any]) -> None:
        self._transfers.add(transfer)
        transfer.add_done_callback(self._untrack)

    def _untrack(self, transfer: asyncio.Future[Any]) -> None:
        self._transfers.discard(transfer)
        # Retrieved here: a send that a timeout or a stop left behind fails with its process
        # (BrokenPipeError), the crash already reported; unretrieved, the loop would report it
        # again whenever the future is collected, inside whatever runs then.
        if not transfer.cancelled():
            transfer.exception()

    async def _end_transfers(self, conn: Connection) -> None:
        """Wait for the threads sending or reading on `conn`, its process gone: closing it
        under them could close another file that reused its number. Shut down first, in case
        a process the model started still holds the other end open."""
        if not self._transfers:
            return
        family, kind = socket.AF_UNIX, socket.SOCK_STREAM
        with contextlib.suppress(OSError), socket.fromfd(conn.fileno(), family, kind) as end:
            end.shutdown(socket.SHUT_RDWR)
        await asyncio.wait(set(self._transfers))

    def _detach(self) -> None:
        self._paused = None
        if self._conn is not None and not self._conn.closed:
            asyncio.get_running_loop().remove_reader(self._conn.fileno())

    def _exitcode(self) -> int | None:
        """The exit status, negative for a signal (-9: SIGKILL), as multiprocessing reports."""
        if self._process is None:
            return None
        _wait(self._process, 0.5)
        return self._process.returncode

    def _exit_reason(self) -> str:
        return f"the replica process exited during setup (code {self._exitcode()})"


def _readable(conn: Connection) -> bool:
    try:
        return conn.poll(0)
    except OSError:
        return True


def _receive(conn: Connection, nbytes: int) -> Any:
    """One message of `nbytes` pickled bytes, read and unpickled (on a thread)."""
    return ForkingPickler.loads(conn.recv_bytes(nbytes))


def _spawn(args: list[str], fd: int, tmpdir: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TMPDIR": tmpdir}  # tempfile's first choice, and most tools'
    return subprocess.Popen(args, pass_fds=(fd,), stdin=subprocess.DEVNULL, env=env)


def _wait(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout_s)
