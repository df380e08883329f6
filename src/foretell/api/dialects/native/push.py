"""POST /v1/models/{owner}/{name}/versions: a pushed model folder (a tar, plain or gzip) becomes
the model's next version, written into the repository whole or not at all, then deployed.

The body streams to a temporary file (limits.is_push: its own cap, max_push_bytes, and none of
the in-memory budget); the service's lifecycle writes it into the repository (manifest.archive
checks every member before anything is written) and starts it. Who may push is asked of the
lifecycle before the body is read."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from contextlib import suppress
from pathlib import Path as FilePath
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import Deployer
from foretell.api.dialects.native import render
from foretell.api.responses import Json
from foretell.domain.model import NAME_PATTERN
from foretell.errors import PayloadTooLarge, UnsupportedMediaType
from foretell.manifest.archive import STALE_STAGING_S, ArchiveLimits

router = APIRouter(prefix="/v1/models", tags=["models"])

ACCEPTED = (
    "application/gzip",
    "application/x-gzip",
    "application/x-tar",
    "application/octet-stream",
)
_WRITE_BYTES = 1024 * 1024  # written to disk in pieces this large, each on a thread
_NAME_DOC = "lowercase letters, digits, '.', '_' and '-'; 1 to 64 characters"
Owner = Annotated[str, Path(pattern=f"^{NAME_PATTERN}$", description=_NAME_DOC)]
Name = Annotated[str, Path(pattern=f"^{NAME_PATTERN}$", description=_NAME_DOC)]

_PUSH_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the model's folder as a tar, gzip-compressed or plain, with its "
        "foretell.yaml at the top or in a single top folder (tar czf m.tgz -C DIR .)",
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in ACCEPTED},
    }
}


@router.post(
    "/{owner}/{name}/versions",
    status_code=202,
    responses={
        202: {"description": "The new version's record, deploying (Location: its URL)"},
        403: {"description": "A key without the deploy scope, or not of the model's owner"},
        413: {
            "description": "The archive is over max_push_bytes, or unpacks past "
            "max_push_unpacked_bytes; nothing was written"
        },
        415: {
            "description": "A body that is not application/gzip, application/x-tar or "
            "application/octet-stream, or one sent with a Content-Encoding"
        },
        422: {
            "description": "A member refused, named with why (a link, '..', an absolute path, a "
            "device, too many members), no foretell.yaml at the top, or a manifest that cannot "
            "be read (its file and field); nothing was written"
        },
    },
    openapi_extra=_PUSH_DOC,
)
async def push_version(owner: Owner, name: Name, request: Request, caller: Deployer) -> Response:
    """Push a model folder as the next version of `owner/name` (made if new); the version is
    built and deployed in the background: follow it at its Location. Needs the deploy scope
    and a key of `owner` (or admin). A refused archive writes nothing."""
    lifecycle = state.service(request).lifecycle
    lifecycle.may_push(owner, caller)  # before the body: a refused key writes nothing
    declared = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if declared not in ACCEPTED:
        raise UnsupportedMediaType(declared or "(none)", ACCEPTED)
    settings = state.settings(request)
    limits = ArchiveLimits(settings.max_push_members, settings.max_push_unpacked_bytes)
    folder = settings.data_dir / "pushes"
    await asyncio.to_thread(_made_clean, folder)
    fd, kept = tempfile.mkstemp(prefix="push-", suffix=".tar", dir=folder)
    try:  # the body is kept in a temporary file while it is checked and unpacked
        with os.fdopen(fd, "wb") as out:
            await _write(request, out, settings.max_push_bytes)
        if await request.is_disconnected():  # cut off: nobody would learn the number
            raise ClientDisconnect()
        version = await lifecycle.push(owner, name, FilePath(kept), caller, limits)
    finally:
        await asyncio.to_thread(FilePath(kept).unlink, missing_ok=True)
    location = f"/v1/models/{owner}/{name}/versions/{version.number}"
    return Json(render.version(version), status_code=202, headers={"Location": location})


def _made_clean(folder: FilePath) -> None:
    """`folder`, made if new, without the bodies a server that died mid-push left in it."""
    folder.mkdir(parents=True, exist_ok=True)
    before = time.time() - STALE_STAGING_S
    for left in folder.glob("push-*"):
        with suppress(FileNotFoundError):  # another request's, ended meanwhile
            if left.stat().st_mtime < before:
                left.unlink()


async def _write(request: Request, out: IO[bytes], limit: int) -> None:
    pending = bytearray()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # limits.BodyLimit refuses it first where the app runs behind it
            raise PayloadTooLarge(size, limit, "max_push_bytes")
        pending += chunk
        if len(pending) >= _WRITE_BYTES:
            await asyncio.to_thread(out.write, bytes(pending))
            pending.clear()
    if pending:
        await asyncio.to_thread(out.write, bytes(pending))
