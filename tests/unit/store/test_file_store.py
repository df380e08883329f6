"""FileStore on each backend: records read back, list newest first by owner, sum what is kept,
find the expired, and mark each removal once however many sweeps race for it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from foretell.domain.files import StoredFile
from foretell.store import PredictionStore

T0 = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
T = TypeVar("T")


def stored(n: int, owner: str = "acme", **fields: object) -> StoredFile:
    created = T0 + timedelta(seconds=n)
    values: dict[str, object] = {
        "id": f"file_{n:032x}",
        "owner": owner,
        "name": f"cat {n}.png",
        "content_type": "image/png",
        "size": 100 * n,
        "sha256": f"{n:064x}",
        "created_at": created,
        "expires_at": created + timedelta(hours=1),
    }
    values.update(fields)
    return StoredFile(**values)  # type: ignore[arg-type]


def on_store(db_url: str, scenario: Callable[[PredictionStore], Awaitable[T]]) -> T:
    async def run() -> T:
        store = await PredictionStore.open(db_url)
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(run())


def test_a_record_reads_back_whole(db_url: str) -> None:
    big = stored(1, size=5 * 1024**3, prediction_id="p-1")  # past a 32-bit integer

    async def scenario(store: PredictionStore) -> tuple[StoredFile | None, StoredFile | None]:
        await store.files.insert(big)
        return await store.files.get(big.id), await store.files.get("file_missing")

    found, missing = on_store(db_url, scenario)
    assert found == big
    assert found is not None
    assert found.created_at.tzinfo is not None
    assert missing is None


def test_pages_are_newest_first_for_one_owner_or_all(db_url: str) -> None:
    async def scenario(store: PredictionStore) -> list[list[str]]:
        for n in range(1, 6):
            await store.files.insert(stored(n, owner="acme" if n != 3 else "other"))
        first = await store.files.page("acme", 2)
        last = first[-1]
        rest = await store.files.page("acme", 10, (last.created_at, last.id))
        everyone = await store.files.page(None, 10)
        return [[f.id[-1] for f in page] for page in (first, rest, everyone)]

    assert on_store(db_url, scenario) == [["5", "4"], ["2", "1"], ["5", "4", "3", "2", "1"]]


def test_used_bytes_and_expiry_count_only_kept_files(db_url: str) -> None:
    async def scenario(store: PredictionStore) -> tuple[object, ...]:
        empty = (await store.files.used_bytes(), await store.files.next_expiry())
        for n in (1, 2, 3):
            await store.files.insert(stored(n))
        await store.files.mark_deleted([stored(1).id], T0)
        return (*empty, await store.files.used_bytes(), await store.files.next_expiry())

    assert on_store(db_url, scenario) == (0, None, 500, stored(2).expires_at)


def test_expired_files_are_marked_once(db_url: str) -> None:
    now = T0 + timedelta(hours=1, seconds=2.5)  # past 1's and 2's expiry, not 3's

    async def scenario(store: PredictionStore) -> tuple[object, ...]:
        for n in (1, 2, 3):
            await store.files.insert(stored(n))
        expired = [f.id for f in await store.files.expired(now, 10)]
        first = await store.files.mark_deleted(expired, now)
        again = await store.files.mark_deleted(expired, now)  # another sweep, a moment later
        record = await store.files.get(stored(1).id)
        left = await store.files.expired(now, 10)
        return expired, first, again, record and record.deleted_at, left

    expired, first, again, deleted_at, left = on_store(db_url, scenario)
    assert expired == first == [stored(1).id, stored(2).id]
    assert again == []
    assert left == []
    assert deleted_at == now
