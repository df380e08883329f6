"""Read a multipart/form-data body part by part as it arrives: a file part's bytes are handed
on chunk by chunk (to FileService.upload, which stages them on disk), never gathered in memory.

Starlette's `request.form()` spools each file part to a temporary file of its own first (in
memory up to 1 MB, then in the system's temporary directory, which may be a RAM disk), and
stops at 1 MB for a plain field; this reads the same body with the same parser
(python-multipart) as a stream of `Part`s."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MAX_BOUNDARY_LENGTH, MultipartParser, parse_options_header

from foretell.errors import InvalidRequest, echo

# ("headers", a part's headers), ("data", some of its bytes), ("end", None)
_Event = tuple[str, bytes | dict[bytes, bytes] | None]


@dataclass(frozen=True)
class Part:
    """One part: its form field `name`, the `filename` of a file part, its declared type, and
    its bytes. Read (or leave) `chunks` before asking for the next part."""

    name: str
    filename: str | None
    content_type: str | None
    chunks: AsyncIterator[bytes]


def boundary(content_type: str) -> bytes | None:
    """The boundary of a multipart/form-data Content-Type; None for any other type."""
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        return None
    found = options.get(b"boundary")
    if not found:
        raise InvalidRequest("Content-Type multipart/form-data names no boundary")
    if len(found) > MAX_BOUNDARY_LENGTH:
        # The parser refuses one this long with an error of its own kind (a 500 if let out).
        raise InvalidRequest(
            f"Content-Type multipart/form-data: its boundary of {len(found)} characters is over "
            f"the limit of {MAX_BOUNDARY_LENGTH} (RFC 2046 allows 70)"
        )
    return found


async def parts(content_type: str, body: AsyncIterator[bytes]) -> AsyncIterator[Part]:
    """The parts of a multipart/form-data `body`, in order. A body that is malformed, or ends
    before its closing boundary (it was cut short), raises InvalidRequest when it is reached."""
    found = boundary(content_type)
    if found is None:
        raise InvalidRequest(f"Content-Type '{echo(content_type)}' is not multipart/form-data")
    reader = _Reader(found, body)
    while (event := await reader.next()) is not None:
        kind, headers = event
        if kind != "headers" or not isinstance(headers, dict):
            continue  # the rest of a part its reader left
        part = Part(*_describe(headers), reader.data())
        yield part
        async for _ in part.chunks:  # whatever the caller did not read
            pass


class _Reader:
    """python-multipart's callbacks turned into events, pulled one at a time."""

    def __init__(self, boundary: bytes, body: AsyncIterator[bytes]) -> None:
        self._body = body
        self._events: deque[_Event] = deque()
        self._field = b""
        self._value = b""
        self.headers: dict[bytes, bytes] = {}
        self._ended = False
        self._finished = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_part_data": lambda data, start, end: self._events.append(
                    ("data", data[start:end])
                ),
                "on_part_end": lambda: self._events.append(("end", None)),
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": lambda: self._events.append(("headers", self.headers)),
                "on_end": self._end,
            },
        )

    async def next(self) -> _Event | None:
        while not self._events:
            if self._finished:
                return None
            try:
                chunk = await anext(self._body)
            except StopAsyncIteration:
                self._finished = True
                if not self._ended:
                    raise InvalidRequest(
                        "multipart body ends before its closing boundary: it was cut short "
                        "(a Content-Length smaller than what was meant to be sent?)"
                    ) from None
                continue
            if self._ended:
                continue  # past the closing boundary: an epilogue, ignored
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise InvalidRequest(f"multipart body is malformed: {exc}") from None
        return self._events.popleft()

    async def data(self) -> AsyncIterator[bytes]:
        """The current part's bytes, up to its end."""
        while (event := await self.next()) is not None:
            kind, value = event
            if kind == "end":
                return
            if kind == "data" and isinstance(value, bytes) and value:
                yield value

    def _begin(self) -> None:
        self.headers = {}  # a new dict: the last part's is still in its "headers" event

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self.headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _end(self) -> None:
        self._ended = True


def _describe(headers: Mapping[bytes, bytes]) -> tuple[str, str | None, str | None]:
    _, options = parse_options_header(headers.get(b"content-disposition", b""))
    name = options.get(b"name")
    if name is None:
        raise InvalidRequest("a multipart part has no name in its Content-Disposition")
    filename = options.get(b"filename")
    declared = headers.get(b"content-type")
    return (
        name.decode("utf-8", "replace"),
        None if filename is None else filename.decode("utf-8", "replace"),
        None if declared is None else declared.decode("latin-1"),
    )
