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


@dataclass(frozen=True, slots=True)
class Live:
    """Where the running batch `batch_id`'s chunks go as they happen (a replica's pipe, a
    thread replica's event loop). Without one, a batch's outcomes carry everything at its end."""

    batch_id: int
    emit: Callable[[Chunk], None]


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


_loops = threading.local()


def _loop() -> asyncio.AbstractEventLoop:
    """The event loop this thread advances async streams on: one, kept, so that an async
    generator resumes on the loop it started on."""
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None:
        loop = _loops.loop = asyncio.new_event_loop()
    return loop


def _next(items: Iterator[Any] | AsyncIterator[Any]) -> Any:
    """The stream's next item; StopIteration (StopAsyncIteration) at its end."""
    if isinstance(items, Iterator):
        return next(items)
    return _loop().run_until_complete(items.__anext__())


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
    try:
        while running:
            for entry in list(running):
                ended = _advance(entry, capture, live, started, others=len(running) > 1)
                if ended is not None:
                    outcomes[entry.index] = ended
                    running.remove(entry)
    except BaseException:  # Interrupted (all canceled): end the streams still open
        _close(running)
        raise
    return outcomes


def _advance(
    entry: _Running, capture: Capture | None, live: Live | None, started: float, others: bool
) -> Outcome | None:
    """One more item of `entry`, sent on; its outcome once it ended (or raised), else None."""
    mode = entry.stream.mode
    try:
        with (
            contextlib.nullcontext()
            if capture is None or entry.logs is None
            else capture(entry.logs)
        ):
            item = _next(entry.stream.items)
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
    """Close the streams of a stopped batch, so that their generators' `finally` runs now."""
    for entry in running:
        items = entry.stream.items
        try:
            if isinstance(items, Iterator):
                close = getattr(items, "close", None)
                if close is not None:
                    close()
                continue
            loop = _loop()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                gathered = asyncio.gather(*pending, return_exceptions=True)
                loop.run_until_complete(gathered)
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                loop.run_until_complete(aclose())
        except Exception:
            traceback.print_exc()  # into the replica's own stderr: nothing else to tell
