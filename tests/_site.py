"""A loopback HTTP server for tests that fetch files: answers GETs by path as scripted and
counts the connections it accepted (0: nothing was fetched from it)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = tuple[int, dict[str, str], bytes] | str  # an answer, or HANG


class Site:
    """A loopback HTTP server answering GETs by path; counts the connections it accepted."""

    HANG = "hang"

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.accepted = 0
        self.release = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = site.routes.get(self.path, (404, {}, b"no such file"))
                if route == Site.HANG:
                    site.release.wait(30)
                    return
                assert not isinstance(route, str)
                status, headers, body = route
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "x-no-length" not in headers:  # else HTTP/1.0's end: the connection closes
                    self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> Any:
                accepted = super().get_request()
                site.accepted += 1
                return accepted

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @classmethod
    @contextlib.contextmanager
    def running(cls, routes: dict[str, Route]) -> Iterator[Site]:
        """A site serving `routes` on its own threads until the block ends."""
        site = cls(routes)
        thread = threading.Thread(target=site._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield site
        finally:
            site.release.set()
            site._server.shutdown()
            site._server.server_close()
            thread.join(10)
