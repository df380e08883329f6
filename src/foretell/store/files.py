"""FileStore: stored files' records (their bytes live in a blob store), sharing the writer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from foretell.domain.files import StoredFile
from foretell.store.reader import Reader
from foretell.store.tables import files
from foretell.store.writer import GroupWriter


def _file(row: Mapping[Any, Any]) -> StoredFile:
    return StoredFile(**row)


class FileStore:
    def __init__(self, reader: Reader, writer: GroupWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def insert(self, file: StoredFile) -> None:
        """Store a new record; returns once committed."""
        done = self._writer.put(files, "insert", asdict(file), wait=True)
        assert done is not None
        await asyncio.shield(done)

    async def get(self, file_id: str) -> StoredFile | None:
        rows = await self._reader.rows(select(files).where(files.c.id == file_id))
        return _file(rows[0]) if rows else None

    async def page(
        self, owner: str | None, limit: int, before: tuple[datetime, str] | None = None
    ) -> list[StoredFile]:
        """Up to `limit` records, newest first (all owners' for None), from past `before`
        (the created_at and id of the last record of the previous page)."""
        c = files.c
        query = select(files).order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        if owner is not None:
            query = query.where(c.owner == owner)
        if before is not None:
            at, last = before
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < last)))
        return [_file(row) for row in await self._reader.rows(query)]

    async def used_bytes(self) -> int:
        """The size of every file whose bytes are still kept."""
        query = select(func.coalesce(func.sum(files.c.size), 0).label("n")).where(
            files.c.deleted_at.is_(None)
        )
        rows = await self._reader.rows(query)
        return int(rows[0]["n"])

    async def next_expiry(self) -> datetime | None:
        """When the next kept file expires."""
        c = files.c
        query = select(func.min(c.expires_at).label("at")).where(c.deleted_at.is_(None))
        rows = await self._reader.rows(query)
        at: datetime | None = rows[0]["at"]  # min() keeps the column's type: UTC-aware
        return at

    async def expired(self, now: datetime, limit: int) -> list[StoredFile]:
        """Up to `limit` kept files whose retention passed by `now`, oldest expiry first."""
        c = files.c
        query = (
            select(files)
            .where(c.deleted_at.is_(None), c.expires_at <= now)
            .order_by(c.expires_at)
            .limit(limit)
        )
        return [_file(row) for row in await self._reader.rows(query)]

    async def mark_deleted(self, ids: Sequence[str], at: datetime) -> list[str]:
        """Mark these files' bytes removed at `at`; the ids this call marked (not those already
        marked, by another process's sweep or an earlier delete): only their bytes are its to
        delete."""

        def mark(conn: Connection) -> list[str]:
            marked = []
            for file_id in ids:
                result = conn.execute(
                    update(files)
                    .where(files.c.id == file_id, files.c.deleted_at.is_(None))
                    .values(deleted_at=at)
                )
                if result.rowcount:
                    marked.append(file_id)
            return marked

        return await self._writer.transact(mark)
