"""Stored files: upload (multipart or a raw body), download (whole or one byte range), list,
delete. Bodies stream to disk as they arrive (limits.is_upload gives them their own cap)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import datetime
from email.message import Message
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from foretell.api import state
from foretell.api.auth import Predictor, Reader
from foretell.api.dialects.native.render import timestamp
from foretell.api.multipart import boundary, parts
from foretell.api.openapi import errors
from foretell.api.ranges import requested_range
from foretell.api.responses import Json
from foretell.domain.access import Principal
from foretell.domain.files import StoredFile
from foretell.errors import InvalidRequest, echo
from foretell.files import FileService

router = APIRouter(prefix="/v1/files", tags=["files"])

FIELD = "file"  # the multipart part that carries the file
# Types that say nothing of a raw body: curl's --data-binary sends the first by default.
_UNDECLARED = ("application/x-www-form-urlencoded", "application/octet-stream")
MAX_PAGE = 1000


class FileUrls(BaseModel):
    get: str


class FileBody(BaseModel):
    """A stored file's record."""

    id: str
    name: str
    content_type: str
    size: int
    sha256: str
    created_at: str
    expires_at: str | None
    deleted_at: str | None
    prediction_id: str | None
    urls: FileUrls


class FilePage(BaseModel):
    results: list[FileBody]
    next: str | None


def file_json(file: StoredFile, files: FileService) -> dict[str, Any]:
    return {
        "id": file.id,
        "name": file.name,
        "content_type": file.content_type,
        "size": file.size,
        "sha256": file.sha256,
        "created_at": timestamp(file.created_at),
        "expires_at": timestamp(file.expires_at),
        "deleted_at": timestamp(file.deleted_at),
        "prediction_id": file.prediction_id,
        "urls": {"get": files.url(file.id)},
    }


_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {FIELD: {"type": "string", "format": "binary"}},
                    "required": [FIELD],
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "",
    status_code=201,
    responses={201: {"model": FileBody}, **errors(400, 413, 415, 507)},
    openapi_extra=_UPLOAD_DOC,
)
async def upload(
    request: Request,
    caller: Predictor,
    filename: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """Store a file: a multipart/form-data part named `file`, or the raw body, named by
    `?filename=` or `Content-Disposition: attachment; filename=...`."""
    files = state.service(request).files
    content_type = request.headers.get("content-type", "")
    if boundary(content_type) is not None:
        stored = await _from_form(request, caller, files, content_type)
    else:
        name = filename or _disposition_name(request.headers.get("content-disposition"))
        declared = content_type.split(";", 1)[0].strip().lower() or None
        if declared in _UNDECLARED:
            declared = None
        chunks = _whole(request, request.stream())
        stored = await files.upload(caller.owner, name or "file", declared, chunks)
    if await request.is_disconnected():
        # Cut off while it was stored (more body than its Content-Length, arriving late):
        # nobody will learn its id, and what was kept may not be what was meant.
        await files.delete(stored.id, caller, why="its request was cut off before the answer")
        raise ClientDisconnect()
    url = files.url(stored.id)
    return Json(file_json(stored, files), status_code=201, headers={"Location": url})


@router.get("", responses={200: {"model": FilePage}, **errors(400)})
async def list_files(
    request: Request,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The caller's files, newest first (removed ones too, with `deleted_at`)."""
    files = state.service(request).files
    page = await files.page(caller, limit + 1, _read_cursor(cursor))
    more = len(page) > limit
    page = page[:limit]
    next_url = None
    if more:
        next_url = str(request.url.include_query_params(cursor=_cursor(page[-1])))
    return Json({"results": [file_json(f, files) for f in page], "next": next_url})


@router.get(
    "/{file_id}",
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes"},
        206: {"description": "One byte range of the file (Range: bytes=start-end)"},
        **errors(404, 410, 416),
    },
)
async def download(file_id: str, request: Request, caller: Reader) -> Response:
    """The file's bytes, whole or one byte range, under its type, length and ETag (its sha256)."""
    files = state.service(request).files
    file = await files.get(file_id, caller)
    etag = f'"{file.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": _disposition(file.name),
        "X-Content-Type-Options": "nosniff",
        # A stored file is the caller's content, not this server's pages: never run as one.
        "Content-Security-Policy": "sandbox",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    span = None
    if wanted is not None and (if_range is None or if_range == etag):
        span = requested_range(wanted, file.size)
    status, start, end = 200, 0, file.size
    if span is not None:
        status, (start, end) = 206, span
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{file.size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=file.content_type)
    chunks = files.stream(file, start, end)
    # The first read before the answer starts: bytes that cannot be read fail the request
    # (a 500 in the error shape), not a response cut off after its head.
    first = await anext(chunks, b"") if end > start else b""
    return StreamingResponse(
        _prepend(first, chunks), status_code=status, headers=headers, media_type=file.content_type
    )


@router.head("/{file_id}", include_in_schema=False)
async def download_head(file_id: str, request: Request, caller: Reader) -> Response:
    """GET's answer without its bytes (curl -I): RFC 9110 asks HEAD of every GET."""
    return await download(file_id, request, caller)


@router.delete("/{file_id}", status_code=204, responses=errors(404, 410))
async def delete(file_id: str, request: Request, caller: Predictor) -> Response:
    """Remove the file's bytes now; its record stays, marked deleted."""
    await state.service(request).files.delete(file_id, caller)
    return Response(status_code=204)


async def _from_form(
    request: Request, caller: Principal, files: FileService, content_type: str
) -> StoredFile:
    form = parts(content_type, request.stream())
    part = await anext(form, None)
    if part is not None and part.name == FIELD and part.filename is None:
        raise InvalidRequest(
            f"multipart body: part '{FIELD}' has no filename: it is a plain field, not a file "
            f"(curl -F {FIELD}=@path, not {FIELD}=<path)"
        )
    if part is None or part.name != FIELD or part.filename is None:
        got = "no part" if part is None else f"part '{echo(part.name)}'"
        raise InvalidRequest(
            f"multipart body: expected a file part named '{FIELD}' first, got {got} "
            f"(curl -F {FIELD}=@path)"
        )

    async def then_nothing() -> AsyncIterator[bytes]:
        async for chunk in part.chunks:
            yield chunk
        async for extra in form:  # read to its end: a body cut short stores nothing
            raise InvalidRequest(
                f"multipart body: part '{echo(extra.name)}' after '{FIELD}'; send one file"
            )

    return await files.upload(
        caller.owner, part.filename, part.content_type, _whole(request, then_nothing())
    )


async def _whole(request: Request, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`chunks`, then a check that the client is still there: one that sent more than its
    Content-Length has had the connection closed under it (the surplus is no request), and
    nothing of what it sent is kept."""
    async for chunk in chunks:
        yield chunk
    if await request.is_disconnected():
        raise ClientDisconnect()


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


def _disposition_name(value: str | None) -> str | None:
    if not value:
        return None
    message = Message()
    message["content-disposition"] = value
    name = message.get_filename()
    return name if isinstance(name, str) else None


def _disposition(name: str) -> str:
    """`attachment` with the name as ASCII and, where it is not, as RFC 6266's filename*."""
    plain = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in name)
    if plain == name:
        return f'attachment; filename="{plain}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def _cursor(file: StoredFile) -> str:
    raw = f"{file.created_at.isoformat()}|{file.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, file_id = raw.split("|", 1)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("no time zone")
        return when, file_id
    except ValueError:
        raise InvalidRequest(
            f"cursor '{echo(cursor)}' is not one this server gave; use a page's `next`"
        ) from None
