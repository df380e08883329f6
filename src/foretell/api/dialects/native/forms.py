"""A create request sent as multipart/form-data: its `json` part is the request body, and each
file part is uploaded (the caller's) and its URL becomes the input field the part is named for:
`curl -F 'json={"model": "...", "input": {"n": 1}}' -F image=@digit.png`. The whole body is
capped by max_upload_bytes (limits.is_upload), each file by max_file_bytes (the file service)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from foretell.api.body import loads
from foretell.api.multipart import parts
from foretell.config import Settings
from foretell.domain.access import Principal
from foretell.errors import InvalidRequest, PayloadTooLarge, echo
from foretell.files import FileService

JSON_PART = "json"
# One file part per file input, each a top-level input field: no model needs more, and each
# is a stored file (deleted again if the request is refused), so a body of many tiny parts
# must not make thousands (1000 parts took 5.6 s, left 1000 deleted records in the list).
MAX_FILE_PARTS = 64


async def read_form(
    content_type: str,
    stream: AsyncIterator[bytes],
    caller: Principal,
    files: FileService,
    settings: Settings,
) -> tuple[Any, list[str]]:
    """The create body a multipart request stands for: its `json` part parsed, with each file
    part's URL put in `input` under the part's name; and the ids of the files stored for it.
    A body refused part way leaves none of its files stored: nobody would learn their ids."""
    stored: list[str] = []
    try:
        return await _read(content_type, stream, caller, files, settings, stored), stored
    except Exception:
        await discard(files, caller, stored)
        raise


async def discard(files: FileService, caller: Principal, stored: Sequence[str]) -> None:
    """Delete the files a create request stored, once the request was refused."""
    for file_id in stored:
        await files.delete(file_id, caller, why="the create request that sent it was refused")


async def _read(
    content_type: str,
    stream: AsyncIterator[bytes],
    caller: Principal,
    files: FileService,
    settings: Settings,
    stored: list[str],
) -> Any:
    body: Any = None
    uploaded: dict[str, str] = {}
    async for part in parts(content_type, stream):
        if part.filename is None:
            if part.name != JSON_PART:
                raise InvalidRequest(
                    f"multipart body: field '{echo(part.name)}' is not a file; send the request "
                    f"as a part named '{JSON_PART}' (-F 'json={{...}}') and files as parts named "
                    "for their input (-F image=@digit.png)"
                )
            if body is not None:
                raise InvalidRequest(f"multipart body: more than one '{JSON_PART}' part")
            raw = await _whole(part.chunks, settings.max_body_bytes)
            body = loads(raw, max_depth=settings.max_json_depth)
            continue
        if part.name in uploaded:
            raise InvalidRequest(f"multipart body: more than one file part '{echo(part.name)}'")
        if len(uploaded) == MAX_FILE_PARTS:
            raise InvalidRequest(
                f"multipart body: more than {MAX_FILE_PARTS} file parts, the limit (one per "
                "file input of the model)"
            )
        file = await files.upload(caller.owner, part.filename, part.content_type, part.chunks)
        stored.append(file.id)
        uploaded[part.name] = files.url(file.id)
    if body is None:
        raise InvalidRequest(
            f"multipart body: no '{JSON_PART}' part; send the request body as "
            f'-F \'{JSON_PART}={{"model": ..., "input": {{...}}}}\''
        )
    return _with_files(body, uploaded)


def _with_files(body: Any, uploaded: dict[str, str]) -> Any:
    if not uploaded:
        return body
    if not isinstance(body, dict):
        return body  # not an object: refused as such by the request's own validation
    given = body.get("input", {})
    if not isinstance(given, dict):
        return body
    both = sorted(set(given) & set(uploaded))
    if both:
        raise InvalidRequest(
            f"multipart body: input '{echo(both[0])}' is given both in the '{JSON_PART}' part "
            "and as a file part; send it once"
        )
    return {**body, "input": {**given, **uploaded}}


async def _whole(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise PayloadTooLarge(len(data), limit)
    return bytes(data)
