"""KeyStore and EnvironmentStore on each backend: what is stored reads back, unique columns hold."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from foretell.domain.access import ApiKey, Scope
from foretell.store import PredictionStore

T0 = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def key(n: int, **fields: object) -> ApiKey:
    values: dict[str, object] = {
        "id": f"key{n}",
        "prefix": f"ft_{n:04d}",
        "digest": f"{n:064x}",
        "owner": "acme",
        "scope": Scope.PREDICT,
        "name": f"key number {n}",
        "created_at": T0 + timedelta(seconds=n),
    }
    values.update(fields)
    return ApiKey(**values)  # type: ignore[arg-type]


def test_keys_read_back_by_digest_id_and_prefix_revoked_and_touched(db_url: str) -> None:
    full = key(1, expires_at=T0 + timedelta(days=30), rate_per_s=2.5, burst=10, scope=Scope.ADMIN)

    async def scenario() -> tuple[ApiKey | None, ...]:
        store = await PredictionStore.open(db_url)
        try:
            await store.keys.insert(full)
            await store.keys.insert(key(2))
            store.keys.touch("key2", T0 + timedelta(hours=1))
            await store.keys.revoke("key2", T0 + timedelta(hours=2))
            return (
                await store.keys.by_digest(full.digest),
                await store.keys.find("key1"),
                await store.keys.find("ft_0001"),
                await store.keys.find("key2"),
                await store.keys.find("nobody"),
            )
        finally:
            await store.close()

    by_digest, by_id, by_prefix, revoked, unknown = asyncio.run(scenario())
    assert by_digest == by_id == by_prefix == full
    assert revoked is not None
    assert revoked.last_used_at == T0 + timedelta(hours=1)
    assert revoked.revoked_at == T0 + timedelta(hours=2)
    assert unknown is None


def test_keys_list_oldest_first_and_a_reused_prefix_is_refused(db_url: str) -> None:
    async def scenario() -> tuple[list[ApiKey], int]:
        store = await PredictionStore.open(db_url)
        try:
            for n in (3, 1, 2):
                await store.keys.insert(key(n))
            with pytest.raises(IntegrityError):
                await store.keys.insert(key(9, prefix="ft_0001"))
            return await store.keys.all(), await store.keys.count()
        finally:
            await store.close()

    listed, count = asyncio.run(scenario())
    assert [k.id for k in listed] == ["key1", "key2", "key3"]
    assert count == 3


def test_environment_assignments_are_stored_and_reassigned(db_url: str) -> None:
    async def scenario() -> dict[tuple[str, str, str], int]:
        store = await PredictionStore.open(db_url)
        try:
            await store.environments.assign("acme", "iris", "production", 1, new=True)
            await store.environments.assign("acme", "iris", "staging", 2, new=True)
            await store.environments.assign("acme", "iris", "production", 3, new=False)
            return await store.environments.all()
        finally:
            await store.close()

    assert asyncio.run(scenario()) == {
        ("acme", "iris", "production"): 3,
        ("acme", "iris", "staging"): 2,
    }
