"""Test doubles for auth: a key store in a dict and a clock that moves only when told."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from foretell.domain.access import ApiKey

T0 = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic reading and the wall clock, moved together by `advance`."""

    def __init__(self) -> None:
        self.seconds = 1000.0
        self.wall = T0

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self.wall += timedelta(seconds=seconds)


class FakeKeyStore:
    """KeyStore's methods over a dict; records what was read and touched. A second process
    sharing the database is `revoke_elsewhere`: the store changes, nobody is told."""

    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}
        self.reads = 0
        self.touched: list[tuple[str, datetime]] = []

    async def insert(self, key: ApiKey) -> None:
        self.keys[key.id] = replace(key)

    async def revoke(self, key_id: str, at: datetime) -> None:
        self.keys[key_id].revoked_at = at

    def touch(self, key_id: str, at: datetime) -> None:
        self.touched.append((key_id, at))

    async def by_digest(self, digest: str) -> ApiKey | None:
        self.reads += 1
        found = next((k for k in self.keys.values() if k.digest == digest), None)
        return None if found is None else replace(found)  # a fresh row, as a read gives

    async def find(self, id_or_prefix: str) -> ApiKey | None:
        return next(
            (replace(k) for k in self.keys.values() if id_or_prefix in (k.id, k.prefix)), None
        )

    async def all(self) -> list[ApiKey]:
        return [replace(k) for k in sorted(self.keys.values(), key=lambda k: k.created_at)]

    async def count(self) -> int:
        return len(self.keys)

    def revoke_elsewhere(self, key_id: str, at: datetime) -> None:
        self.keys[key_id].revoked_at = at
