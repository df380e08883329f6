"""EnvironmentStore: which version each model's named environments serve, as assigned."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select

from foretell.store.reader import Reader
from foretell.store.tables import environments
from foretell.store.writer import GroupWriter

# (owner, name, environment) → version_number
Assignments = dict[tuple[str, str, str], int]


class EnvironmentStore:
    def __init__(self, reader: Reader, writer: GroupWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def all(self) -> Assignments:
        rows = await self._reader.rows(select(environments))
        return {(r["owner"], r["name"], r["environment"]): r["version_number"] for r in rows}

    async def assign(
        self, owner: str, name: str, environment: str, version: int, *, new: bool
    ) -> None:
        """Store the assignment (a `new` row, or the update of one); returns once committed."""
        row = {
            "id": f"{owner}/{name}@{environment}",
            "owner": owner,
            "name": name,
            "environment": environment,
            "version_number": version,
            "updated_at": datetime.now(UTC),
        }
        done = self._writer.put(environments, "insert" if new else "update", row, wait=True)
        assert done is not None
        await asyncio.shield(done)
