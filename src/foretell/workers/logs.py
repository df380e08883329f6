"""What one input prints while it runs: sent on as complete lines, capped; and the per-thread
stdout of a thread replica, whose prints must not reach (or take) the server's own output."""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO, cast

# The server's default (config.max_prediction_logs_chars), for replicas built without one.
LOGS_CAP = 1024 * 1024
# A partial line this long goes out without waiting for its newline: a model printing progress
# with carriage returns (a bar) would otherwise be held back until it ends.
FLUSH_CHARS = 4096


def cut_note(cap: int) -> str:
    return f"[foretell] logs cut: more than {cap} characters (max_prediction_logs_chars)\n"


class Sink:
    """What stdout must offer the code printing into it, beyond `write`. Not an io.TextIOBase:
    one is made for every prediction, and that costs more to make (and to write to)."""

    __slots__ = ()
    encoding = "utf-8"
    errors = "strict"
    closed = False

    def write(self, text: str) -> int:
        raise NotImplementedError

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise io.UnsupportedOperation("an input's logs have no file descriptor")


class InputLogs(Sink):
    """One input's prints. With `send`, complete lines go to it as they are written (a partial
    line once FLUSH_CHARS are waiting, or when `rest` takes it); without, they wait for `rest`.
    Past `cap` characters the text is cut with one line saying so, and the rest dropped: a
    replica never holds more than the cap of one input's logs. Thread-safe: a model may print
    from threads of its own."""

    __slots__ = ("_cap", "_ends_line", "_left", "_lock", "_send", "_waiting", "_waiting_chars")

    def __init__(self, cap: int, send: Callable[[str], None] | None = None) -> None:
        self._left = cap
        self._cap = cap
        self._send = send
        self._waiting: list[str] = []
        self._waiting_chars = 0
        self._lock = threading.Lock()
        self._ends_line = True  # the text so far ends with a newline (or is empty)

    def write(self, text: str) -> int:
        written = len(text)
        if not written:
            return 0
        with self._lock:
            if self._left < 0:
                return written  # already cut
            if written > self._left:
                kept = text[: self._left]
                ends = kept.endswith("\n") if kept else self._ends_line
                text = kept + ("" if ends else "\n") + cut_note(self._cap)
                self._left = -1
            else:
                self._left -= written
            self._ends_line = text.endswith("\n")
            self._waiting.append(text)
            self._waiting_chars += len(text)
            if self._send is not None and ("\n" in text or self._waiting_chars >= FLUSH_CHARS):
                self._flush_lines()
        return written

    def _flush_lines(self) -> None:
        assert self._send is not None
        joined = "".join(self._waiting)
        end = len(joined) if len(joined) >= FLUSH_CHARS else joined.rfind("\n") + 1
        if end:
            self._send(joined[:end])
            rest = joined[end:]
            self._waiting = [rest] if rest else []
            self._waiting_chars = len(rest)

    def rest(self, send: bool = False) -> str:
        """What no send carried yet, taken: sent now (`send`, when its input ends before its
        batch does) or returned for the input's outcome."""
        with self._lock:
            joined = "".join(self._waiting)
            self._waiting, self._waiting_chars = [], 0
        if send and joined and self._send is not None:
            self._send(joined)
            return ""
        return joined


class Discard(Sink):
    """Prints of a batch of several inputs outside any one's stream: they belong to no single
    prediction, and batches mix callers."""

    __slots__ = ()

    def write(self, text: str) -> int:
        return len(text)


# Directs what runs meanwhile prints into a target (an input's logs).
Capture = Callable[[Sink], contextlib.AbstractContextManager[object]]


def redirected(target: Sink) -> contextlib.AbstractContextManager[object]:
    """The whole process's stdout and stderr into `target`: in a replica process of its own."""
    stream = cast(TextIO, target)
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(stream))
    stack.enter_context(contextlib.redirect_stderr(stream))
    return stack


_sinks = threading.local()


class _PerThread(io.TextIOBase):
    """sys.stdout (or stderr) of a server running thread replicas: what a thread that is
    running a batch writes goes to that batch's input; everything else to the real stream."""

    def __init__(self, real: TextIO) -> None:
        self.real = real

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        sink: Sink | None = getattr(_sinks, "target", None)
        if sink is None:
            return self.real.write(text)
        return sink.write(text)

    def flush(self) -> None:
        if getattr(_sinks, "target", None) is None:
            self.real.flush()

    def fileno(self) -> int:
        return self.real.fileno()

    def isatty(self) -> bool:
        return self.real.isatty()

    def close(self) -> None:
        # Called when a replaced proxy is collected (io's finalizer): the real stream is not
        # the proxy's to flush or close, and may be closed already.
        return None

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.real.encoding

    def __getattr__(self, name: str) -> Any:
        # The rest of the real stream (its buffer, name, reconfigure...) for the server's code.
        return getattr(self.real, name)


_install_lock = threading.Lock()


def _install() -> None:
    """Put the per-thread proxy in front of sys.stdout and sys.stderr, where it is not already
    (a test harness may have swapped the streams since)."""
    with _install_lock:
        if type(sys.stdout) is not _PerThread:
            sys.stdout = _PerThread(sys.stdout)
        if type(sys.stderr) is not _PerThread:
            sys.stderr = _PerThread(sys.stderr)


@contextlib.contextmanager
def this_thread(target: Sink) -> Iterator[None]:
    """What this thread prints goes to `target` meanwhile; other threads' output is untouched."""
    _install()
    previous = getattr(_sinks, "target", None)
    _sinks.target = target
    try:
        yield
    finally:
        _sinks.target = previous
