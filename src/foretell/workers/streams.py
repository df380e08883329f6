"""A batch's streamed outputs, driven in turn, one item of each at a time, so that every caller
gets its items as they come: each goes out as a Chunk at once, and the outcome holds the whole."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from foretell.domain import OutputStream
from foretell.runtimes.base import Stream
from foretell.workers.logs import Capture, InputLogs
from foretell.workers.protocol import Chunk, Outcome

# As a process replica's child says it (workers.child.canceled).
CANCELED = "Interrupted: the prediction was canceled"


@dataclass(frozen=True, slots=True)
class Live:
    """Where the running batch `batch_id`'s chunks go as they happen (a replica's pipe, a
    thread replica's event loop). Without one, a batch's outcomes carry everything at its end."""

    batch_id: int
    emit: Callable[[Chunk], None]
    # Set to stop the batch's streams before their next item: a thread replica's interrupt (its
    # thread cannot be stopped from outside, but a generator can between items; a process
    # replica's child is interrupted by a signal instead).
    stop: threading.Event | None = None


def input_logs(index: int, live: Live | None, cap: int) -> InputLogs:
    """Where input `index`'s prints go: on as Chunks with `live`, else kept for its outcome."""
    if live is None:
        return InputLogs(cap)
    return InputLogs(cap, functools.partial(_send_logs, live, index))


def _send_logs(live: Live, index: int, text: str) -> None:
    live.emit(Chunk(live.batch_id, index, (), None, text))


@dataclass(eq=False, slots=True)
class _Running:
    index: int
    stream: Stream
    logs: InputLogs | None
    items: list[Any] = field(default_factory=list)


class _Loop:
    """The event loop a batch's async streams are advanced on, made for the first of them: one
    for the batch, so that each async generator resumes on the loop it started on; closed
    with the batch (a loop kept by a thread replica's thread would outlive the replica)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def next(self, items: Iterator[Any] | AsyncIterator[Any]) -> Any:
        """The stream's next item; StopIteration (StopAsyncIteration) at its end."""
        if isinstance(items, Iterator):
            return next(items)
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(items.__anext__())

    def close(self, unfinished: list[AsyncIterator[Any]]) -> None:
        """End the async streams left `unfinished` (their `finally` runs), then the loop."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:  # an interrupted step
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            for items in unfinished:
                aclose = getattr(items, "aclose", None)
                if aclose is not None:
                    loop.run_until_complete(aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
        except Exception:
            traceback.print_exc()  # into the replica's own stderr: nothing else to tell
        finally:
            loop.close()


def drive(
    streams: list[tuple[int, Stream, InputLogs | None]],
    capture: Capture | None,
    live: Live | None,
    started: float,
) -> dict[int, Outcome]:
    """Advance `streams` (index, stream, where its prints go) in turn until each has ended;
    each one's outcome by index. One raising fails its input only, after the items it sent."""
    running = [_Running(index, stream, logs) for index, stream, logs in streams]
    outcomes: dict[int, Outcome] = {}
    loop = _Loop()
    try:
        while running:
            if live is not None and live.stop is not None and live.stop.is_set():
                for entry in running:
                    outcomes[entry.index] = Outcome(
                        error=CANCELED, execution_time=_since(started), streamed=entry.stream.mode
                    )
                break  # the streams still open are closed below, on this thread
            for entry in list(running):
                ended = _advance(entry, loop, capture, live, started, others=len(running) > 1)
                if ended is not None:
                    outcomes[entry.index] = ended
                    running.remove(entry)
    finally:  # also when Interrupted (all canceled): end the streams still open
        _close(running)
        loop.close([e.stream.items for e in running if not isinstance(e.stream.items, Iterator)])
    return outcomes


def _advance(
    entry: _Running,
    loop: _Loop,
    capture: Capture | None,
    live: Live | None,
    started: float,
    others: bool,
) -> Outcome | None:
    """One more item of `entry`, sent on; its outcome once it ended (or raised), else None."""
    mode = entry.stream.mode
    try:
        with (
            contextlib.nullcontext()
            if capture is None or entry.logs is None
            else capture(entry.logs)
        ):
            item = loop.next(entry.stream.items)
    except (StopIteration, StopAsyncIteration):
        output: Any = "".join(entry.items) if mode is OutputStream.TEXT else entry.items
        logs = _rest(entry, others)
        return Outcome(output, logs=logs, execution_time=_since(started), streamed=mode)
    except Exception as exc:
        logs = _rest(entry, others)
        error = f"{type(exc).__name__}: {exc}"
        return Outcome(error=error, logs=logs, execution_time=_since(started), streamed=mode)
    if mode is OutputStream.TEXT and not isinstance(item, str):
        item = str(item)
    entry.items.append(item)
    if live is not None:
        live.emit(Chunk(live.batch_id, entry.index, (item,), mode))
    return None


def _rest(entry: _Running, others: bool) -> str:
    # While other streams of the batch go on, its last partial line goes out now, not with
    # the batch's end.
    return "" if entry.logs is None else entry.logs.rest(send=others)


def _since(started: float) -> float:
    return time.perf_counter() - started


def _close(running: list[_Running]) -> None:
    """Close the sync streams of a stopped batch, so that their generators' `finally` runs."""
    for entry in running:
        close = getattr(entry.stream.items, "close", None)
        if isinstance(entry.stream.items, Iterator) and close is not None:
            try:
                close()
            except Exception:
                traceback.print_exc()  # into the replica's own stderr: nothing else to tell
