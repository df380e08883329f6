"""A validated input's file references resolved to their bytes (`FileData`): a `data:` URI
decoded, a stored file of the caller's read, an http(s) URL fetched by the server through the
outbound guard. Every failure is the caller's error (InvalidInput, 422) naming the field and the
cause; nothing else is ever opened (a path on the server is refused by the schema and here)."""

from __future__ import annotations

import asyncio
import mimetypes
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from foretell.config import Settings
from foretell.domain.access import Principal
from foretell.domain.files import FileData
from foretell.errors import FileGone, FileNotFound, InvalidInput, echo
from foretell.files.datauri import decode_data_uri
from foretell.files.fetch import DEFAULT_NAME, Fetcher, precheck
from foretell.files.kinds import HEAD_BYTES, KindMismatch, content_type
from foretell.files.refusal import Refused
from foretell.files.service import FileService
from foretell.manifest.file_fields import INVALID, INVALID_MSG, FileFields, Loc, invalid

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class Resolved:
    """An input with FileData where its file references were, and one log line per file."""

    input: dict[str, Any]
    logs: list[str]
    size: int = 0  # the files' bytes, together


class _Total:
    """The bytes of one input's files so far, against the cap on one request's files."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0

    def take(self, size: int) -> None:
        self.size += size
        if self.size > self.limit:
            raise Refused(
                "files_too_large",
                f"with this file the input's files come to {self.size:,} bytes or more, more "
                f"than the limit of {self.limit:,} bytes for one request's files "
                "(max_upload_bytes)",
            )


class InputFiles:
    """Resolves file references for one server: its file service, size caps, fetch settings."""

    def __init__(
        self,
        files: FileService,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._files = files
        self._limit = settings.max_file_bytes
        # One request's files together, as a multipart body's are: a list naming one stored
        # file a thousand times must not read it into memory a thousand times.
        self._total_limit = settings.max_upload_bytes
        self._fetcher = Fetcher(settings, transport=transport)
        self._clock = clock

    def check(self, fields: FileFields, data: dict[str, Any]) -> None:
        """Raise InvalidInput unless every file reference in `data` is one that could resolve:
        a data: URI, a stored file's id or URL, or an http(s) URL the fetch may use as far as
        can be told without a lookup (no I/O: before anything is recorded)."""
        errors = []
        for loc, value in fields.find(data):
            problem = self._problem(value)
            if problem is not None:
                errors.append(_error(loc, value, *problem))
        if errors:
            raise InvalidInput(errors)

    def _problem(self, value: str) -> tuple[str, str] | None:
        lowered = value[:8].lower()
        if lowered.startswith("data:") or self._files.reference(value) is not None:
            return None
        if not lowered.startswith(("http://", "https://")):
            return INVALID, INVALID_MSG
        refused = precheck(value, self._fetcher.guard)
        return None if refused is None else (refused.kind, refused.msg)

    async def resolve(
        self, fields: FileFields, data: dict[str, Any], caller: Principal
    ) -> Resolved:
        """`data` with each file reference replaced by its FileData; InvalidInput naming every
        field that failed and why."""
        found = fields.find(data)
        total = _Total(self._total_limit)
        results = await asyncio.gather(
            *(self._one(value, caller, total) for _, value in found), return_exceptions=True
        )
        errors: list[dict[str, Any]] = []
        resolved: dict[Loc, FileData] = {}
        logs: list[str] = []
        for (loc, value), result in zip(found, results, strict=True):
            if isinstance(result, Refused):
                errors.append(_error(loc, value, result.kind, result.msg))
            elif isinstance(result, BaseException):
                raise result
            else:
                file, how, took = result
                resolved[loc] = file
                logs.append(
                    f"[foretell] input {_label(loc)}: {how} ({len(file.data):,} bytes, "
                    f"{file.content_type}){took}"
                )
        if errors:
            raise InvalidInput(errors)
        size = sum(len(file.data) for file in resolved.values())
        return Resolved(fields.visit(data, lambda loc, value: resolved[loc]), logs, size)

    async def close(self) -> None:
        await self._fetcher.close()

    async def _one(self, value: str, caller: Principal, total: _Total) -> tuple[FileData, str, str]:
        """The file, how it was had, and (for a fetch) how long that took."""
        started = self._clock()
        if value[:5].lower() == "data:":
            decoded = self._decoded(value)
            total.take(len(decoded.data))
            return decoded, "decoded a data: URI", ""
        file_id = self._files.reference(value)
        if file_id is not None:
            stored = await self._stored(file_id, caller, total)
            return stored, f"read uploaded file {file_id}", ""
        if not value.lower().startswith(("http://", "https://")):
            raise Refused(INVALID, INVALID_MSG)
        fetched = await self._fetcher.fetch(value)
        total.take(len(fetched.data))
        file = self._typed(fetched.name, fetched.content_type, fetched.data)
        ms = (self._clock() - started) * 1000
        return file, f"fetched {echo(value)}", f" in {ms:,.0f} ms"

    def _decoded(self, value: str) -> FileData:
        declared, data = decode_data_uri(value, self._limit)
        return self._typed(DEFAULT_NAME, declared, data)

    async def _stored(self, file_id: str, caller: Principal, total: _Total) -> FileData:
        try:
            stored = await self._files.get(file_id, caller)
            total.take(stored.size)  # before its bytes are read
            data = await self._files.read(stored)
        except FileNotFound as missing:  # missing or another owner's: told alike
            raise Refused(missing.code, missing.message) from None
        except FileGone as gone:
            raise Refused(gone.code, gone.message) from None
        return FileData(stored.name, stored.content_type, data)

    def _typed(self, name: str, declared: str | None, data: bytes) -> FileData:
        try:
            kind = content_type(data[:HEAD_BYTES], declared, name)
        except KindMismatch as mismatch:
            raise Refused("file_kind_mismatch", str(mismatch)) from None
        if "." not in name:  # a library that goes by extension reads it right
            name += mimetypes.guess_extension(kind, strict=False) or ""
        return FileData(name, kind, data)


def _error(loc: Loc, value: str, kind: str, msg: str) -> dict[str, Any]:
    return invalid(loc, echo(value), msg, kind)


def _label(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)
