"""A real webhook receiver on loopback for tests: records every request, answers as scripted.

Plain helpers, not fixtures (import with `from _receiver import Receiver`). The server runs in
its own threads, so it answers while the test's event loop waits on the app.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

HANG = "hang"  # a scripted answer: read the request, then never answer


Answer = int | tuple[int, dict[str, str]] | str


@dataclass(frozen=True)
class Received:
    path: str  # with its query string
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float = field(default_factory=time.monotonic)
    answer: Answer | None = None  # what the receiver answered it (chosen as it was recorded)

    @property
    def record(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """Answers each POST with the next scripted answer (a status, a status with headers, or
    HANG), then with `otherwise` once the script runs out."""

    def __init__(self, *script: Answer, otherwise: Answer = 204, port: int = 0) -> None:
        self.script: deque[Answer] = deque(script)
        self.otherwise = otherwise
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        self._thread.start()
        try:
            yield self
        finally:
            self._release.set()  # let hanging handlers go
            self._server.shutdown()
            self._server.server_close()

    def requests(self, where: Callable[[Received], bool] = lambda r: True) -> list[Received]:
        with self._lock:
            return [r for r in self.received if where(r)]

    def for_prediction(self, prediction_id: str) -> list[Received]:
        return self.requests(lambda r: r.record["id"] == prediction_id)

    async def until(
        self, check: Callable[[Receiver], bool], timeout_s: float = 20.0, what: str = "requests"
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not check(self):
            assert time.monotonic() < deadline, f"no {what} within {timeout_s} s: {self.received}"
            await asyncio.sleep(0.02)

    def answer_from_now(self, answer: Answer) -> None:
        """Answer every request from now on with `answer` (once the script ran out)."""
        with self._lock:
            self.otherwise = answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:  # one step: a test changing `otherwise` sees which got what
                    answer = receiver.script.popleft() if receiver.script else receiver.otherwise
                    receiver.received.append(Received(self.path, headers, body, answer=answer))
                if answer == HANG:
                    receiver._release.wait(60)
                    return
                status, extra = answer if isinstance(answer, tuple) else (answer, {})
                assert isinstance(status, int)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test asserts on what was received

        return Handler
