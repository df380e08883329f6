"""A bare Server-Sent Events reader on a raw asyncio connection: its buffers and pace are ours.

An HTTP client library reads the socket as fast as it can and keeps what it read; a benchmark of
slow and stalled readers needs a reader that takes nothing from the socket while it does not
read, so that the server's side is what fills. Here the socket's receive buffer (SO_RCVBUF) and
asyncio's own read buffer (`limit`) are set per connection, and bytes leave the kernel only when
the caller asks for the next event. HTTP/1.1, one request per connection, chunked or not.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event; `id` is None when the event carried no `id:` field."""

    event: str
    data: str
    id: str | None


@dataclass
class Opened:
    """A stream whose response head has been read."""

    status: int
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.close()

    async def body(self) -> AsyncIterator[bytes]:
        """The response body's bytes as they are asked for (chunked transfer decoded)."""
        if self.headers.get("transfer-encoding", "").lower() != "chunked":
            while chunk := await self.reader.read(16384):
                yield chunk
            return
        while True:
            size_line = await self.reader.readline()
            if not size_line:
                return  # the server closed mid-body
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                return
            yield await self.reader.readexactly(size)
            await self.reader.readexactly(2)  # the chunk's CRLF

    async def events(self) -> AsyncIterator[Event]:
        """Events in order, parsed per the SSE spec (fields, multi-line data, comments)."""
        pending = b""
        name, data, event_id = "", [], None
        async for chunk in self.body():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.removesuffix(b"\r").decode()
                if not line:
                    if data:
                        yield Event(name or "message", "\n".join(data), event_id)
                    name, data, event_id = "", [], None
                    continue
                if line.startswith(":"):
                    continue  # a comment: keep-alive
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "data":
                    data.append(value)
                elif field == "event":
                    name = value
                elif field == "id":
                    event_id = value


async def open_stream(
    host: str,
    port: int,
    path: str,
    *,
    last_event_id: str | None = None,
    rcvbuf: int | None = None,
    limit: int = 65536,
) -> Opened:
    """GET `path` with `Accept: text/event-stream`; the head read, the body left in the socket.

    `rcvbuf` sets the socket's receive buffer before connecting (the kernel doubles it); `limit`
    is asyncio's read buffer, past twice which it stops reading the socket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
    head = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Accept: text/event-stream",
        "Connection: close",
    ]
    if last_event_id is not None:
        head.append(f"Last-Event-ID: {last_event_id}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    status_line = await reader.readline()
    if not status_line:
        writer.close()
        raise ConnectionError(f"GET {path}: the server closed the connection without answering")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        key, _, value = line.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    return Opened(status, headers, reader, writer)
