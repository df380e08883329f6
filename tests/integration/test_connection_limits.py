"""A real `foretell serve` over raw sockets: what a client can make a connection hold, and for how
long, before any key is checked (api.connection). Headers are capped (431), heads and bodies
that stop arriving are cut off (408), idle connections closed, and past `max_connections` a
request is 503; each answer JSON, in the path's dialect, and the connection closed after it.

Found by an attack run: ten connections sending 50 MB of one header line took the server from
646 to 1111 MB, an 8 MB header got a 200, and eight uploads that declared 10 MB and sent one
byte locked every other client out with 503 for as long as they stalled."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import orjson
import pytest
from _server import Server, build_repository, running_server

pytestmark = pytest.mark.slow

TIMEOUT_S = 1  # the server's header, body and keep-alive timeouts here
ANSWER_WITHIN_S = 20.0  # far past TIMEOUT_S: only a server that never answers misses it
LIMIT = "the limit of 65536 bytes (max_head_bytes)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No models; the default head cap (64 KiB) and body sizes; 1 s timeouts."""
    base = tmp_path_factory.mktemp("limited")
    env = {
        "FORETELL_HEADER_TIMEOUT_S": str(TIMEOUT_S),
        "FORETELL_BODY_TIMEOUT_S": str(TIMEOUT_S),
        "FORETELL_KEEP_ALIVE_S": str(TIMEOUT_S),
    }
    repo = build_repository(base, demo=False, fixtures=())
    with running_server(repo, base / "data", env=env) as started:
        yield started


class Answer:
    """An HTTP response read off a socket, up to the server closing it."""

    def __init__(self, raw: bytes, closed: bool) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1]) if lines[0] else 0
        self.headers = {k.lower(): v for k, _, v in (ln.partition(": ") for ln in lines[1:])}
        self.closed = closed

    def json(self) -> object:
        return orjson.loads(self.body)


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=ANSWER_WITHIN_S)


def send(sock: socket.socket, data: bytes) -> bool:
    """Send `data`; False once the server has closed the connection (it may have answered)."""
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


def answer(sock: socket.socket, *, within_s: float = ANSWER_WITHIN_S) -> Answer:
    """Read until the server closes the connection (or a whole response with keep-alive)."""
    deadline = time.monotonic() + within_s
    raw = b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if raw:
                return Answer(raw, closed=False)
            raise AssertionError(f"no answer within {within_s:g} s") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return Answer(raw, closed=True)
        raw += chunk


def request(path: str, *headers: str, method: str = "GET") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def key(server: Server) -> str:
    return f"Authorization: Bearer {server.admin_key}"


def test_an_8_mb_header_is_431_and_the_connection_closed(server: Server) -> None:
    with connect(server) as sock:
        send(sock, request("/health/live", "X-Big: " + "a" * (8 << 20)))
        got = answer(sock)

    assert got.status == 431, got.body
    assert got.headers["content-type"] == "application/json"
    detail = got.json()["detail"]  # type: ignore[index]
    assert detail.startswith(f"request headers (or trailers) exceed {LIMIT}: "), detail
    assert got.closed


def test_a_head_just_over_the_cap_is_431_and_one_under_it_is_served(server: Server) -> None:
    with connect(server) as sock:
        send(sock, request("/health/live", "X-Big: " + "a" * 66_000))
        over = answer(sock)
    with connect(server) as sock:
        send(sock, request("/health/live", "X-Big: " + "a" * 60_000, "Connection: close"))
        under = answer(sock)

    assert over.status == 431, over.body
    assert LIMIT in over.json()["detail"]  # type: ignore[index]
    assert under.status == 200, under.body


def test_unfinished_header_lines_are_cut_off_at_the_cap(server: Server) -> None:
    # Ten connections, each sending up to 16 MB of one header line that never ends, held open.
    before = rss_mb(server)
    sent = []
    with ExitStack() as stack:
        held = [stack.enter_context(connect(server)) for _ in range(10)]
        for sock in held:
            total, piece = 0, b"a" * 65536
            if send(sock, b"GET /health/live HTTP/1.1\r\nHost: test\r\nX-Big: "):
                while total < (16 << 20) and send(sock, piece):
                    total += len(piece)
            sent.append(total)
        grown = rss_mb(server) - before
        answers = [answer(sock) for sock in held]

    assert [a.status for a in answers] == [431] * 10
    assert max(sent) < (16 << 20), sent  # closed while it was still sending
    assert grown < 50, f"RSS grew {grown:.0f} MB"  # 160 MB of header lines arrived


def rss_mb(server: Server) -> float:
    status = Path(f"/proc/{server.pid}/status").read_text()
    (line,) = [ln for ln in status.splitlines() if ln.startswith("VmRSS:")]
    return int(line.split()[1]) / 1024


def test_trailers_are_held_to_the_same_cap(server: Server) -> None:
    with connect(server) as sock:
        head = request("/v1/predictions", key(server), "Transfer-Encoding: chunked", method="POST")
        send(sock, head + b"1\r\n{\r\n0\r\nX-Trailer: ")
        total = 0
        while total < (4 << 20) and send(sock, b"a" * 65536):
            total += 65536
        got = answer(sock)

    assert got.status == 431, got.body
    assert got.json()["detail"].startswith(  # type: ignore[index]
        f"request headers (or trailers) exceed {LIMIT}"
    )


def test_headers_that_stop_arriving_are_408(server: Server) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        send(sock, b"GET /health/live HTTP/1.1\r\nHost: test\r\n")
        got = answer(sock)

    assert time.monotonic() - started >= TIMEOUT_S
    assert got.status == 408, got.body
    assert got.json() == {
        "detail": f"the request's headers did not all arrive within {TIMEOUT_S} s, the server's "
        "limit (header_timeout_s); the connection is closed"
    }
    assert got.closed


def test_headers_sent_a_line_at_a_time_are_408_all_the_same(server: Server) -> None:
    # Each line resets no clock: the head as a whole has TIMEOUT_S to arrive.
    with connect(server) as sock:
        send(sock, b"GET /health/live HTTP/1.1\r\n")
        lines = 0
        while True:
            send(sock, f"X-Line-{lines}: a\r\n".encode())
            lines += 1
            try:
                got = answer(sock, within_s=TIMEOUT_S / 4)
                break
            except AssertionError:  # nothing yet: another line
                assert lines < 4 * ANSWER_WITHIN_S / TIMEOUT_S, "never answered"

    assert got.status == 408, got.body
    assert "header_timeout_s" in got.json()["detail"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "envelope"),
    [("/v1/predictions", "detail"), ("/v2/models/nobody/nothing/infer", "error")],
)
def test_a_body_that_stops_arriving_is_408_in_the_routes_dialect(
    server: Server, path: str, envelope: str
) -> None:
    with connect(server) as sock:
        send(sock, request(path, key(server), "Content-Length: 1000", method="POST") + b"{")
        got = answer(sock)

    assert got.status == 408, got.body
    assert got.json() == {
        envelope: f"the request's body sent nothing for {TIMEOUT_S} s, the server's limit "
        "(body_timeout_s); the connection is closed"
    }
    assert got.closed
    assert "Traceback" not in server.log()  # the app read a disconnect, quietly


def test_stalled_uploads_lock_nobody_out_and_are_cut_off(server: Server) -> None:
    # Eight uploads that declare 10 MB each (the server's max_body_bytes_in_flight: 80 MB) and
    # send one byte. (Under --anonymous-public they need no key, on a public model's route.)
    with ExitStack() as stack:
        stalled = [stack.enter_context(connect(server)) for _ in range(8)]
        declared = "Content-Length: 10485760"
        for sock in stalled:
            send(sock, request("/v1/predictions", key(server), declared, method="POST") + b"{")
        body = b'{"model": "nobody/nothing", "input": {}}'
        headers = (key(server), f"Content-Length: {len(body)}", "Connection: close")
        with connect(server) as other:
            send(other, request("/v1/predictions", *headers, method="POST") + body)
            got = answer(other)
        assert got.status == 404, got.body  # read and answered: no model of that name
        cut_off = [answer(sock) for sock in stalled]

    assert [c.status for c in cut_off] == [408] * 8


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    # Taken before connecting: the server may accept (and start its timer) before connect()
    # returns here, so a clock started after it read 0.9999 s on a busy machine.
    started = time.monotonic()
    with connect(server) as sock:
        got = answer(sock)

    assert (got.status, got.body, got.closed) == (0, b"", True)
    assert time.monotonic() - started >= TIMEOUT_S


def test_past_max_connections_a_request_is_503_json(tmp_path: Path) -> None:
    env = {"FORETELL_MAX_CONNECTIONS": "3"}
    repo = build_repository(tmp_path, demo=False, fixtures=())
    with running_server(repo, tmp_path / "data", env=env) as crowded:
        with connect(crowded), connect(crowded), connect(crowded) as third:  # two idle
            send(third, request("/health/live"))
            refused = answer(third)

        assert refused.status == 503, refused.body
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {
            "detail": "the server is at its limit of 3 open connections or requests in progress "
            "(max_connections); retry in 1 s"
        }
        assert refused.closed


@pytest.mark.parametrize(
    "head",
    [
        b"FOO /v1/predictions HTTP/1.1\r\nHost: test\r\n\r\n",
        b"POST /v1/predictions HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n"
        b"Content-Length: 3\r\n\r\n{}",
        b"POST /v1/predictions HTTP/1.1\r\nHost: test\r\nContent-Length: -1\r\n\r\n",
    ],
    ids=["unknown method", "two lengths", "negative length"],
)
def test_what_the_parser_refuses_is_a_json_400(server: Server, head: bytes) -> None:
    with connect(server) as sock:
        send(sock, head)
        got = answer(sock)

    assert got.status == 400, got.body
    assert got.headers["content-type"] == "application/json"
    assert got.json()["detail"].startswith(  # type: ignore[index]
        "the request is not valid HTTP/1.1 (a malformed request line or header"
    )
    assert got.closed
