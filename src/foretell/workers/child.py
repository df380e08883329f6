"""The loop inside a replica process: load one model version, then answer Predict messages."""

from __future__ import annotations

import contextlib
import io
import signal
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

import orjson

from foretell.errors import ForetellError, InvalidInput, ModelLoadFailed
from foretell.manifest import ModelVersion
from foretell.runtimes.base import LoadedModel, WithFiles
from foretell.runtimes.registry import get_runtime
from foretell.workers.lifeline import die_with_parent, watch_parent
from foretell.workers.protocol import (
    LARGE_MESSAGE_BYTES,
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
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if isinstance(message, Shutdown):
            return
        if isinstance(message, Predict):
            send(conn, Done(message.batch_id, _interruptible(model, message.inputs)))


def send(conn: Connection, message: ToParent) -> None:
    """Send `message` as Connection.send does, a large one announced first by Large: the parent
    then reads it on a thread rather than on its event loop."""
    data = ForkingPickler.dumps(message)
    if len(data) >= LARGE_MESSAGE_BYTES:
        conn.send(Large(len(data)))
    conn.send_bytes(data)


# The parent sends this signal to stop a batch whose predictions were all canceled (cog's way);
# a model that ignores it is killed after a grace period.
INTERRUPT = signal.SIGUSR1
_running = False


class Interrupted(BaseException):
    """Raised inside the model's code: a BaseException, so `except Exception` does not eat it."""


def _interrupt(signum: int, frame: object) -> None:
    if _running:
        raise Interrupted


def _interruptible(model: LoadedModel, inputs: Sequence[Mapping[str, Any]]) -> list[Outcome]:
    global _running
    try:
        _running = True
        return run_batch(model, inputs)
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
    model: LoadedModel, inputs: Sequence[Mapping[str, Any]], capture_logs: bool = True
) -> list[Outcome]:
    """Predict a batch; if it raises, retry each input alone so one bad input fails only itself.

    `capture_logs` redirects the process's stdout/stderr into the outcomes; a replica on a
    thread of the server must not, since the redirect is process-wide."""
    outcomes = _attempt(model, inputs, capture_logs)
    if outcomes is not None:
        return outcomes
    return [_single(model, item, capture_logs) for item in inputs]


def _captured(logs: io.StringIO, capture: bool) -> contextlib.AbstractContextManager[object]:
    if not capture:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(logs))
    stack.enter_context(contextlib.redirect_stderr(logs))
    return stack


def _attempt(
    model: LoadedModel, inputs: Sequence[Mapping[str, Any]], capture_logs: bool
) -> list[Outcome] | None:
    if len(inputs) == 1:
        return [_single(model, inputs[0], capture_logs)]
    started = time.perf_counter()
    logs = io.StringIO()
    try:
        with _captured(logs, capture_logs):
            outputs = model.predict(inputs)
    except Exception:
        return None
    if len(outputs) != len(inputs):
        return None  # a model that miscounts is run input by input, so each gets its own answer
    elapsed = time.perf_counter() - started
    # What a model prints while running a batch belongs to no single prediction, and batches mix
    # callers: attaching it to each would leak one caller's data into another's record.
    return [
        _refused(o, elapsed) if isinstance(o, InvalidInput) else _outcome(o, elapsed)
        for o in outputs
    ]


def _outcome(output: Any, elapsed: float, logs: str = "") -> Outcome:
    """A successful output's outcome, marked when it holds files (see Outcome.files)."""
    if type(output) is WithFiles:
        return Outcome(output.output, logs=logs, execution_time=elapsed, files=True)
    return Outcome(output, logs=logs, execution_time=elapsed)


def _refused(exc: InvalidInput, elapsed: float, logs: str = "") -> Outcome:
    """The model judged the input itself wrong. Data only across the boundary, and JSON for the
    record: an exception in an error's `ctx` becomes its message."""
    refused = orjson.loads(orjson.dumps(exc.errors, default=str))
    return Outcome(error=exc.message, refused=refused, logs=logs, execution_time=elapsed)


def _single(model: LoadedModel, item: Mapping[str, Any], capture_logs: bool) -> Outcome:
    started = time.perf_counter()
    logs = io.StringIO()
    try:
        with _captured(logs, capture_logs):
            (output,) = model.predict([item])
    except InvalidInput as exc:
        return _refused(exc, time.perf_counter() - started, logs.getvalue())
    except Exception as exc:
        return Outcome(
            error=f"{type(exc).__name__}: {exc}",
            logs=logs.getvalue(),
            execution_time=time.perf_counter() - started,
        )
    if isinstance(output, InvalidInput):
        return _refused(output, time.perf_counter() - started, logs.getvalue())
    return _outcome(output, time.perf_counter() - started, logs.getvalue())
