"""The loop inside a replica process: load one model version, then answer Predict messages."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

import orjson

from foretell.errors import ForetellError, InvalidInput, ModelLoadFailed
from foretell.manifest import ModelVersion
from foretell.runtimes.base import LoadedModel, Stream, WithFiles
from foretell.runtimes.registry import get_runtime
from foretell.workers.lifeline import die_with_parent, watch_parent
from foretell.workers.logs import LOGS_CAP, Capture, Discard, InputLogs, redirected
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
from foretell.workers.streams import Live, drive, input_logs

# Loads a version in the replica: the runtime's (load_model), or a test's double of a model.
Loader = Callable[[ModelVersion], LoadedModel]


def main(argv: Sequence[str], load: Loader | None = None) -> None:
    """Entry point of a spawned replica, `argv` being FD PARENT_PID [MODEL] (FD: this end of the
    parent's socket); returns (and the process exits) on Shutdown or EOF. `load` replaces the
    runtime's loader: for test doubles of a model."""
    fd, parent_pid = int(argv[0]), int(argv[1])
    die_with_parent(parent_pid)
    # Ctrl-C and systemd signal the whole process group. The parent decides when a replica
    # stops (Shutdown, or EOF when the parent is gone), so its in-flight work can finish
    # or be re-queued rather than fail.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(INTERRUPT, _interrupt)
    watch_parent(fd)
    serve(Connection(fd), load or load_model)


def serve(conn: Connection, load: Loader) -> None:
    """Answer the parent on `conn`: Setup (loading with `load`), then Predict messages until
    Shutdown or EOF. Whatever the model raises goes back as data, never as an exception."""
    try:
        message = conn.recv()
    except EOFError:
        return
    assert isinstance(message, Setup)
    model, reply = setup(message, load)
    send(conn, reply)
    if model is None:
        return
    cap = message.logs_cap
    emit = functools.partial(send_chunk, conn)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if isinstance(message, Shutdown):
            return
        if isinstance(message, Predict):
            live = Live(message.batch_id, emit) if message.live else None
            send(conn, Done(message.batch_id, _interruptible(model, message.inputs, live, cap)))


# One sender at a time: a model may print from threads of its own while its batch runs.
_sending = threading.Lock()


def send(conn: Connection, message: ToParent) -> None:
    """Send `message` as Connection.send does, a large one announced first by Large: the parent
    then reads it on a thread rather than on its event loop."""
    data = ForkingPickler.dumps(message)
    with _sending:
        if len(data) >= LARGE_MESSAGE_BYTES:
            conn.send(Large(len(data)))
        conn.send_bytes(data)


def send_chunk(conn: Connection, chunk: Chunk) -> None:
    """Send a Chunk while the batch runs; an interrupt waits until it is sent: raised inside
    the send, it would leave half a message in the pipe. (Done goes once the batch is over,
    when an interrupt raises nothing.)"""
    global _in_send, _deferred
    if threading.get_ident() != _MAIN:
        send(conn, chunk)  # a model's own thread: the interrupt lands in the main thread
        return
    _in_send = True
    try:
        send(conn, chunk)
    finally:
        _in_send = False
    if _deferred:
        _deferred = False
        raise Interrupted


# The parent sends this signal to stop a batch whose predictions were all canceled (cog's way);
# a model that ignores it is killed after a grace period.
INTERRUPT = signal.SIGUSR1
_running = False
# Python runs signal handlers in the main thread: one that lands while it sends a Chunk waits.
_MAIN = threading.main_thread().ident
_in_send = False
_deferred = False


class Interrupted(BaseException):
    """Raised inside the model's code: a BaseException, so `except Exception` does not eat it."""


def _interrupt(signum: int, frame: object) -> None:
    global _deferred
    if not _running:
        return
    if _in_send:
        _deferred = True
        return
    raise Interrupted


def _interruptible(
    model: LoadedModel,
    inputs: Sequence[Mapping[str, Any]],
    live: Live | None = None,
    cap: int = LOGS_CAP,
) -> list[Outcome]:
    global _running, _deferred
    try:
        _deferred, _running = False, True
        return run_batch(model, inputs, live=live, logs_cap=cap)
    except Interrupted:
        return canceled(inputs)
    finally:
        _running = False


def canceled(inputs: Sequence[object]) -> list[Outcome]:
    """The outcomes of a batch interrupted because all its predictions were canceled."""
    return [Outcome(error="Interrupted: the prediction was canceled") for _ in inputs]


def setup(message: Setup, load: Loader) -> tuple[LoadedModel | None, Ready | SetupFailed]:
    """Load the version `message` names: the model (None if it failed) and the reply for the
    parent. Shared by every replica that speaks these messages (a process, a Ray actor)."""
    started = time.perf_counter()
    try:
        model = load(message.version)
    except ModelLoadFailed as exc:  # a user's setup() may raise anything; it arrives as data
        return None, SetupFailed(exc.reason, exc.traceback)
    return model, Ready(model.signature, time.perf_counter() - started)


def load_model(version: ModelVersion) -> LoadedModel:
    """Check and load `version` with its runtime; any failure is ModelLoadFailed with the
    reason and the traceback (a runtime wraps the model's own exception: the chained
    traceback shows both)."""
    try:
        runtime = get_runtime(version.manifest.runtime)
        runtime.check(version)
        return runtime.load(version)
    except Exception as exc:
        if isinstance(exc, ModelLoadFailed):
            reason = exc.reason
        elif isinstance(exc, ForetellError):
            reason = exc.message
        else:
            reason = f"{type(exc).__name__}: {exc}"
        raise ModelLoadFailed(str(version.ref), reason, traceback.format_exc()) from exc


def run_batch(
    model: LoadedModel,
    inputs: Sequence[Mapping[str, Any]],
    capture_logs: bool | Capture = True,
    *,
    live: Live | None = None,
    logs_cap: int = LOGS_CAP,
) -> list[Outcome]:
    """Predict a batch; if it raises, retry each input alone so one bad input fails only itself.

    `capture_logs` directs what an input's code prints into its outcome (True: the whole
    process's stdout/stderr, for a replica process; a Capture such as logs.this_thread for a
    thread of the server; False: not at all), each input's cut past `logs_cap` characters.
    With `live`, printed lines and streamed items go out as Chunks while the batch runs, and
    the outcomes keep only what no chunk carried."""
    capture = _capture_of(capture_logs)
    outcomes = _attempt(model, inputs, capture, live, logs_cap)
    if outcomes is not None:
        return outcomes
    return [_single(model, item, i, capture, live, logs_cap) for i, item in enumerate(inputs)]


def _capture_of(capture_logs: bool | Capture) -> Capture | None:
    if capture_logs is True:
        return redirected
    if capture_logs is False:
        return None
    return capture_logs


def _attempt(
    model: LoadedModel,
    inputs: Sequence[Mapping[str, Any]],
    capture: Capture | None,
    live: Live | None,
    cap: int,
) -> list[Outcome] | None:
    if len(inputs) == 1:
        return [_single(model, inputs[0], 0, capture, live, cap)]
    started = time.perf_counter()
    try:
        # What a model prints while running a batch belongs to no single prediction, and
        # batches mix callers: attaching it to each would leak one caller's data into
        # another's record.
        with contextlib.nullcontext() if capture is None else capture(Discard()):
            outputs = model.predict(inputs)
    except Exception:
        return None
    if len(outputs) != len(inputs):
        return None  # a model that miscounts is run input by input, so each gets its own answer
    elapsed = time.perf_counter() - started
    outcomes = [
        _refused(o, elapsed) if isinstance(o, InvalidInput) else _outcome(o, elapsed)
        for o in outputs
    ]
    streams = [
        (i, o, _logs(i, capture, live, cap)) for i, o in enumerate(outputs) if type(o) is Stream
    ]
    if streams:
        # Each stream's prints while it is advanced are its own input's.
        for index, outcome in drive(streams, capture, live, started).items():
            outcomes[index] = outcome
    return outcomes


def _logs(index: int, capture: Capture | None, live: Live | None, cap: int) -> InputLogs | None:
    return None if capture is None else input_logs(index, live, cap)


def _outcome(output: Any, elapsed: float, logs: str = "") -> Outcome:
    """A successful output's outcome, marked when it holds files (see Outcome.files); a Stream's
    is replaced once it has been driven."""
    if type(output) is WithFiles:
        return Outcome(output.output, logs=logs, execution_time=elapsed, files=True)
    return Outcome(output, logs=logs, execution_time=elapsed)


def _refused(exc: InvalidInput, elapsed: float, logs: str = "") -> Outcome:
    """The model judged the input itself wrong. Data only across the boundary, and JSON for the
    record: an exception in an error's `ctx` becomes its message."""
    refused = orjson.loads(orjson.dumps(exc.errors, default=str))
    return Outcome(error=exc.message, refused=refused, logs=logs, execution_time=elapsed)


def _single(
    model: LoadedModel,
    item: Mapping[str, Any],
    index: int,
    capture: Capture | None,
    live: Live | None,
    cap: int,
) -> Outcome:
    started = time.perf_counter()
    logs = _logs(index, capture, live, cap)
    try:
        with contextlib.nullcontext() if capture is None or logs is None else capture(logs):
            (output,) = model.predict([item])
            if type(output) is Stream:
                # Driven inside the capture: what it prints while it yields is this input's.
                return drive([(index, output, logs)], capture, live, started)[index]
    except InvalidInput as exc:
        return _refused(exc, time.perf_counter() - started, _rest(logs))
    except Exception as exc:
        return Outcome(
            error=f"{type(exc).__name__}: {exc}",
            logs=_rest(logs),
            execution_time=time.perf_counter() - started,
        )
    if isinstance(output, InvalidInput):
        return _refused(output, time.perf_counter() - started, _rest(logs))
    return _outcome(output, time.perf_counter() - started, _rest(logs))


def _rest(logs: InputLogs | None) -> str:
    return "" if logs is None else logs.rest()
