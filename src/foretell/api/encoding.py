"""Decode request bodies sent compressed (`Content-Encoding: gzip` or `deflate`), within the limit.

tritonclient compresses requests this way (`request_compression_algorithm`), as Triton accepts.
The limit holds for the body as the app reads it, decompressed: decompression stops one byte
past it, so a small zip bomb costs no more memory than an honest body of the largest size.
Another coding is 415, naming it. The compressed body itself is bounded by `limits.BodyLimit`,
which runs before this."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from foretell.api.errors import dialect_of_path, error_response, headers_for, status_for
from foretell.api.limits import is_upload
from foretell.errors import DecodedTooLarge, ForetellError, InvalidRequest, UnsupportedEncoding

# Content-Encoding → zlib's wbits: gzip's header and trailer, or zlib's (HTTP's "deflate").
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
SUPPORTED = ("gzip", "deflate")
_SKIPPED = {b"content-encoding", b"content-length"}  # they describe the body as sent


class ContentDecoding:
    """ASGI middleware: the app reads a compressed body decompressed, or gets the reason not."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        applied = codings(scope["headers"]) if scope["type"] == "http" else []
        if not applied:
            await self.app(scope, receive, send)
            return
        if is_upload(scope["method"], scope["path"], scope["headers"]):
            # Decoding happens in memory, and an upload is streamed to disk: a file is sent as
            # it is (compressed if it is a compressed file).
            refused = UnsupportedEncoding(applied[0], ())
            await error_response(refused, dialect_of_path(scope["path"]))(scope, receive, send)
            return
        decoded = False

        async def decoding() -> Message:
            # The whole body at the first read; later reads (a disconnect) pass through.
            nonlocal decoded
            if decoded:
                return await receive()
            decoded = True
            sent, message = await _read(receive)
            if message is not None:
                return message
            try:
                body = self.decode(sent, applied)
            except ForetellError as exc:
                raise refusal(exc) from None
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": decoded_headers(scope["headers"])}, decoding, send)

    def decode(self, body: bytes, codings: list[str]) -> bytes:
        """Undo `codings` (in the order they were applied), each bounded by the limit."""
        return decode(body, codings, self.limit)


def decode(body: bytes, codings: list[str], limit: int) -> bytes:
    """Undo `codings` (in the order they were applied), each bounded by `limit`."""
    for coding in reversed(codings):
        wbits = _WBITS.get(coding)
        if wbits is None:
            raise UnsupportedEncoding(coding, SUPPORTED)
        body = _inflate(body, coding, wbits, limit)
    return body


def refusal(exc: ForetellError) -> HTTPException:
    """`exc`, raised while a route reads its body, as FastAPI lets it through: it turns any
    other error raised there into a bare 400. The status is still the one table's."""
    return HTTPException(status_for(exc), exc.message, headers_for(exc))


def _inflate(compressed: bytes, coding: str, wbits: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(compressed, limit + 1)
    except zlib.error as exc:
        raise InvalidRequest(f"request body is not valid {coding} data: {exc}") from None
    if len(body) > limit:
        raise DecodedTooLarge(coding, len(compressed), limit)
    if not inflater.eof:
        raise InvalidRequest(f"request body is not valid {coding} data: it ends early")
    if inflater.unused_data:
        raise InvalidRequest(
            f"request body is not valid {coding} data: "
            f"{len(inflater.unused_data)} bytes follow its end"
        )
    return body


def decoded_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A request's headers once its body is decoded: less those that described it as sent."""
    return [(k, v) for k, v in headers if k not in _SKIPPED]


def codings(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The Content-Encoding's codings in the order applied, `identity` left out."""
    found = []
    for key, value in headers:
        if key == b"content-encoding":
            found += [c.strip().lower() for c in value.decode("latin-1").split(",")]
    return [c for c in found if c and c != "identity"]


async def _read(receive: Receive) -> tuple[bytes, Message | None]:
    """The whole body as sent, or (b"", the disconnect) if the client went away first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None
