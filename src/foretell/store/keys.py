"""KeyStore: API keys as stored — a prefix and a digest, never the key — sharing the writer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from foretell.domain.access import ApiKey, Scope
from foretell.store.reader import Reader
from foretell.store.tables import api_keys
from foretell.store.writer import GroupWriter


def _key(row: Mapping[Any, Any]) -> ApiKey:
    return ApiKey(**{**row, "scope": Scope(row["scope"])})


class KeyStore:
    def __init__(self, reader: Reader, writer: GroupWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def insert(self, key: ApiKey) -> None:
        """Store a new key; returns once committed."""
        done = self._writer.put(
            api_keys, "insert", {**asdict(key), "scope": key.scope.value}, wait=True
        )
        assert done is not None
        await asyncio.shield(done)

    async def revoke(self, key_id: str, at: datetime) -> None:
        """Mark the key revoked from `at`; returns once committed."""
        done = self._writer.put(api_keys, "update", {"id": key_id, "revoked_at": at}, wait=True)
        assert done is not None
        await asyncio.shield(done)

    def touch(self, key_id: str, at: datetime) -> None:
        """Note that the key was used at `at`, in the next commit."""
        self._writer.put(api_keys, "update", {"id": key_id, "last_used_at": at}, wait=False)

    async def by_digest(self, digest: str) -> ApiKey | None:
        rows = await self._reader.rows(select(api_keys).where(api_keys.c.digest == digest))
        return _key(rows[0]) if rows else None

    async def find(self, id_or_prefix: str) -> ApiKey | None:
        """The key with this id or prefix."""
        c = api_keys.c
        query = select(api_keys).where(or_(c.id == id_or_prefix, c.prefix == id_or_prefix))
        rows = await self._reader.rows(query)
        return _key(rows[0]) if rows else None

    async def all(self) -> list[ApiKey]:
        """Every key, revoked and expired ones included, oldest first."""
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        return [_key(row) for row in await self._reader.rows(query)]

    async def count(self) -> int:
        rows = await self._reader.rows(select(func.count().label("n")).select_from(api_keys))
        return int(rows[0]["n"])
