"""FileService: stored files (uploads and models' outputs): store, find, read, delete, expire."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from foretell.config import Settings
from foretell.domain.access import Principal
from foretell.domain.files import FileData, StoredFile
from foretell.errors import (
    FileGone,
    FileKindMismatch,
    FileNotFound,
    FileTooLarge,
    StorageFull,
    StoreUnavailable,
)
from foretell.files.blobs import Blobs, LocalBlobs
from foretell.files.intake import WRITE_BYTES, clear_stale, discard, stage
from foretell.files.kinds import KindMismatch, content_type
from foretell.files.retention import Schedule, interval_for
from foretell.store.files import FileStore

log = logging.getLogger("foretell.files")

OnRemoved = Callable[[list[StoredFile]], Awaitable[None]]
Clock = Callable[[], datetime]
_ID = re.compile(r"file_[0-9a-f]{32}")
_URL_PATH = re.compile(r"(?:.*/)?v1/files/(file_[0-9a-f]{32})")
MAX_NAME_CHARS = 255
SWEEP_BATCH = 500
# Retry-After of a full store: when the next file expires, within these bounds.
RETRY_MIN_S, RETRY_MAX_S = 1, 3600
RETRY_AFTER_S = 5  # of a blob store that failed
STALE_STAGED_S = 3600.0  # a staged upload untouched this long was left by a crash


def _now() -> datetime:
    return datetime.now(UTC)


def new_file_id() -> str:
    return f"file_{secrets.token_hex(16)}"


class _OverQuota(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


class FileService:
    """Stored files (uploads and models' outputs) on a local directory or an S3-compatible store.

    Records are in the store (`files` table), bytes in `blobs` under the file's id. A file is
    staged whole and synced before it is stored, and stored before its record is: a record
    never names bytes that are not there. Another owner's file is reported as not found."""

    def __init__(
        self,
        store: FileStore,
        blobs: Blobs,
        settings: Settings,
        *,
        on_removed: OnRemoved | None = None,
        clock: Clock = _now,
    ) -> None:
        self.blobs = blobs
        self.on_removed = on_removed  # told of the files a delete or the sweep removed
        self._store = store
        self._settings = settings
        self._clock = clock
        self._base = (settings.public_url or _local_url(settings.host, settings.port)).rstrip("/")
        self._reserved = 0  # bytes of files being staged or stored now, not in the store's sum
        self._stored = 0  # bytes this service stored since it started (in the store's sum)
        self._sweeps = Schedule(self.sweep, interval_for(settings.file_retention_s))

    @classmethod
    def for_settings(
        cls, store: FileStore, settings: Settings, *, on_removed: OnRemoved | None = None
    ) -> FileService:
        """A service over the blob store `settings.files` names (default data_dir/files)."""
        return cls(store, blobs_for(settings), settings, on_removed=on_removed)

    def url(self, file_id: str) -> str:
        """Where a caller downloads the file: `{public_url}/v1/files/{id}`."""
        return f"{self._base}/v1/files/{file_id}"

    def reference(self, value: str) -> str | None:
        """The file id if `value` names one of the server's files: a bare id, or an http(s) URL
        whose path is /v1/files/{id} (any host: the server may be reached by several names)."""
        if _ID.fullmatch(value):
            return value
        if not value.startswith(("http://", "https://")):
            return None
        try:
            path = urlsplit(value).path
        except ValueError:
            return None
        match = _URL_PATH.fullmatch(path)
        return match.group(1) if match else None

    async def upload(
        self,
        owner: str,
        name: str,
        declared_type: str | None,
        chunks: AsyncIterable[bytes],
        *,
        prediction_id: str | None = None,
    ) -> StoredFile:
        """Store a file streamed in `chunks` (never whole in memory), its type from its bytes.
        FileTooLarge past max_file_bytes, StorageFull past max_files_bytes (nothing of it
        kept either way), FileKindMismatch for a declared image/audio/video/PDF it is not."""
        name = clean_name(name)
        limit, quota = self._settings.max_file_bytes, self._settings.max_files_bytes
        base, stored = await self._store.used_bytes(), self._stored
        held = 0  # of this file's bytes, those counted in self._reserved

        def others() -> int:  # in use but this file's: stored, staged or being stored
            return base + self._stored - stored + self._reserved - held

        def check(size: int) -> None:
            nonlocal held
            if size > limit:
                raise FileTooLarge(name, size, limit)
            # Counted as they arrive: uploads staged side by side, each checked alone against
            # what was stored, would fill the disk past the quota before any is refused.
            if others() + size > quota:
                self._reserved -= held  # at once: uploads alongside may use the room now
                held = 0
                raise _OverQuota(size)
            self._reserved += size - held
            held = size

        try:
            try:
                with self._disk():
                    staged = await stage(chunks, self.blobs.staging, check)
            except _OverQuota as over:
                raise await self._full(over.size, others()) from None
            try:
                try:
                    kind = content_type(staged.head, declared_type, name)
                except KindMismatch as mismatch:
                    raise FileKindMismatch(name, str(mismatch)) from None
                # Again with what other processes stored meanwhile.
                base, stored = await self._store.used_bytes(), self._stored
                if others() + staged.size > quota:
                    raise await self._full(staged.size, others())
                kept = await self._keep(
                    owner, name, kind, staged.size, staged.sha256, staged.path, prediction_id
                )
                self._stored += staged.size
                return kept
            finally:
                discard(staged.path)  # put moved it, unless something failed first
        finally:
            self._reserved -= held

    async def save(
        self, owner: str, file: FileData, *, prediction_id: str | None = None
    ) -> StoredFile:
        """Store bytes in hand (a model's output). A type the bytes are not is dropped for
        what they are: the model's file is kept either way."""

        async def whole() -> AsyncIterator[bytes]:
            # In write-sized pieces: one 100 MB chunk would be copied on the event loop.
            view = memoryview(file.data)
            for start in range(0, len(view), WRITE_BYTES):
                yield bytes(view[start : start + WRITE_BYTES])

        declared: str | None = file.content_type
        try:
            content_type(file.data[:8192], declared, file.name)
        except KindMismatch:
            declared = None
        return await self.upload(owner, file.name, declared, whole(), prediction_id=prediction_id)

    async def get(self, file_id: str, caller: Principal) -> StoredFile:
        """The caller's file: FileNotFound if missing or another owner's, FileGone if its bytes
        were removed (or its retention passed and the sweep has yet to remove them)."""
        file = await self._store.get(file_id) if _ID.fullmatch(file_id) else None
        if file is None or not caller.owns(file.owner):
            raise FileNotFound(file_id)
        now = self._clock()
        if file.deleted_at is not None:
            raise FileGone(file.id, file.deleted_at.isoformat(), _why(file, file.deleted_at))
        if file.expires_at is not None and file.expires_at <= now:
            raise FileGone(file.id, file.expires_at.isoformat(), _why(file, file.expires_at))
        return file

    async def read(self, file: StoredFile) -> bytes:
        """The whole file's bytes; FileGone if they went since `file` was looked up (deleted,
        or swept, in between: the caller's input error, not the server's)."""
        try:
            with self._disk():
                return await self.blobs.read(file.id)
        except FileNotFoundError:
            removed = self._clock().isoformat()
            raise FileGone(file.id, removed, "it was removed while it was being read") from None

    async def stream(
        self, file: StoredFile, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the file, in chunks as they are read."""
        with self._disk():
            async for chunk in self.blobs.stream(file.id, start, end):
                yield chunk

    async def page(
        self, caller: Principal, limit: int, before: tuple[datetime, str] | None = None
    ) -> list[StoredFile]:
        """The caller's files (every owner's for an admin), newest first, removed ones too."""
        return await self._store.page(None if caller.admin else caller.owner, limit, before)

    async def delete(
        self, file_id: str, caller: Principal, *, why: str | None = None
    ) -> StoredFile:
        """Remove the caller's file's bytes now; the record stays, marked deleted. `why` is
        logged (default: deleted by the caller)."""
        file = await self.get(file_id, caller)
        now = self._clock()
        if not await self._store.mark_deleted([file.id], now):
            raise FileGone(file.id, now.isoformat(), "it was deleted")  # by another request
        await self._discard(file.id)
        log.info(
            "deleted file %s of %s (%d bytes): %s",
            file.id,
            file.owner,
            file.size,
            why or f"deleted by {caller.owner or 'an admin'}",
        )
        removed = replace(file, deleted_at=now)
        if self.on_removed is not None:  # a model's output: its record says data_removed
            await self.on_removed([removed])
        return removed

    async def sweep(self) -> list[StoredFile]:
        """Remove the bytes of every file whose retention passed; those this call removed
        (another process's sweep may take some), after `on_removed` was told of them."""
        now = self._clock()
        removed: list[StoredFile] = []
        while batch := await self._store.expired(now, SWEEP_BATCH):
            marked = set(await self._store.mark_deleted([f.id for f in batch], now))
            for file in batch:
                if file.id in marked:
                    await self._discard(file.id)
                    log.info(
                        "deleted file %s of %s (%d bytes): its retention ended at %s",
                        file.id,
                        file.owner,
                        file.size,
                        file.expires_at,
                    )
                    removed.append(replace(file, deleted_at=now))
            if len(batch) < SWEEP_BATCH:
                break
        if removed and self.on_removed is not None:
            await self.on_removed(removed)
        stale = await asyncio.to_thread(
            clear_stale, self.blobs.staging, STALE_STAGED_S, time.time()
        )
        for path in stale:
            log.warning("removed %s: a staged upload left by a process that stopped", path)
        return removed

    async def start(self) -> None:
        """Start the retention sweep (and run its first round now)."""
        self._sweeps.start()

    async def close(self) -> None:
        """Stop the sweep; release the blob store."""
        await self._sweeps.close()
        await self.blobs.close()

    async def _keep(
        self,
        owner: str,
        name: str,
        kind: str,
        size: int,
        sha256: str,
        source: Path,
        prediction_id: str | None,
    ) -> StoredFile:
        now = self._clock()
        retention = timedelta(seconds=self._settings.file_retention_s)
        file = StoredFile(
            id=new_file_id(),
            owner=owner,
            name=name,
            content_type=kind,
            size=size,
            sha256=sha256,
            created_at=now,
            expires_at=now + retention,
            prediction_id=prediction_id,
        )
        step = asyncio.ensure_future(self._put_and_record(file, source))
        try:
            await asyncio.shield(step)
        except asyncio.CancelledError:
            # Never stopped half way: the put's thread and the shielded insert go on regardless,
            # and bytes without a record are never swept. Whole, the file expires as any does.
            await asyncio.wait([step])
            if not step.cancelled():
                step.exception()  # retrieved: a cancelled caller has nobody to tell
            raise
        log.info("stored file %s of %s (%d bytes, %s)", file.id, owner, size, kind)
        return file

    async def _put_and_record(self, file: StoredFile, source: Path) -> None:
        with self._disk():
            await self.blobs.put(file.id, source)
        try:
            await self._store.insert(file)
        except BaseException:
            await self._discard(file.id)  # no bytes without a record
            raise

    async def _discard(self, file_id: str) -> None:
        """Delete a file's bytes; one that fails is logged, and its bytes stay unnamed by any
        record (the record says they are gone either way)."""
        try:
            await self.blobs.delete(file_id)
        except Exception as exc:  # a delete must not undo what its caller already decided
            log.warning(
                "could not delete the bytes of file %s from %s: %s", file_id, self.blobs.where, exc
            )

    @contextmanager
    def _disk(self) -> Iterator[None]:
        """A local disk's failure (full, read-only, gone) as the S3 store's: StoreUnavailable.
        Bytes that are not there stay FileNotFoundError."""
        try:
            yield
        except FileNotFoundError:
            raise
        except OSError as exc:
            cause = exc.strerror or str(exc)
            raise StoreUnavailable(self.blobs.where, cause, RETRY_AFTER_S) from exc

    async def _full(self, size: int, used: int) -> StorageFull:
        """StorageFull, retried when the next file expires."""
        retry = RETRY_MAX_S
        if (at := await self._store.next_expiry()) is not None:
            retry = int((at - self._clock()).total_seconds()) + 1
        retry = min(RETRY_MAX_S, max(RETRY_MIN_S, retry))
        return StorageFull(size, used, self._settings.max_files_bytes, retry)


def blobs_for(settings: Settings) -> Blobs:
    """The blob store `settings.files` names: s3://bucket/prefix, or a directory."""
    where = settings.files
    if where is not None and where.startswith("s3://"):
        from foretell.files.s3 import S3Blobs  # boto3 is the s3 extra, loaded only for it

        return S3Blobs.from_url(where, settings)
    return LocalBlobs(Path(where) if where else settings.data_dir / "files")


def clean_name(name: str) -> str:
    """A file's name as kept and shown: its last path part, no control characters, at most
    MAX_NAME_CHARS; "file" if nothing is left."""
    last = re.split(r"[/\\]", name)[-1]
    shown = "".join(c for c in last if unicodedata.category(c)[0] != "C").strip()
    return shown[:MAX_NAME_CHARS] or "file"


def _why(file: StoredFile, at: datetime) -> str:
    if file.expires_at is not None and at >= file.expires_at:
        kept = (file.expires_at - file.created_at).total_seconds()
        return f"its retention of {kept:g} s (file_retention_s) passed"
    return "it was deleted"


def _local_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"  # every address: the loopback one is one of them
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
