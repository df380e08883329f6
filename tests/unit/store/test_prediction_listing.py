"""PredictionStore reads: filtered, cursor-paginated listing and restart recovery."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import pytest

from foretell.domain import Prediction, PredictionStatus
from foretell.errors import InvalidRequest
from foretell.store import InvalidCursor, Page, PredictionStore

MakePrediction = Callable[..., Prediction]
STATUSES = list(PredictionStatus)


def _records(make: MakePrediction, n: int) -> list[Prediction]:
    # Three records per second, so the id must break created_at ties.
    return [
        make(
            f"p{i:02d}",
            offset_s=i // 3,
            owner="acme" if i % 2 else "other",
            name="resnet" if i % 3 else "bert",
            status=STATUSES[i % len(STATUSES)],
        )
        for i in range(n)
    ]


def _newest_first(records: list[Prediction]) -> list[str]:
    return [p.id for p in sorted(records, key=lambda p: (p.created_at, p.id), reverse=True)]


async def _open_with(db_url: str, records: list[Prediction]) -> PredictionStore:
    store = await PredictionStore.open(db_url)
    await asyncio.gather(*(store.insert(p) for p in records))
    return store


async def _all_pages(store: PredictionStore, limit: int, **filters: Any) -> list[Page]:
    pages = [await store.list(limit=limit, **filters)]
    while pages[-1].next_cursor is not None:
        pages.append(await store.list(limit=limit, cursor=pages[-1].next_cursor, **filters))
    return pages


def test_pages_cover_every_record_once_newest_first(
    db_url: str, make_prediction: MakePrediction
) -> None:
    records = _records(make_prediction, 25)

    async def scenario() -> list[Page]:
        store = await _open_with(db_url, records)
        try:
            return await _all_pages(store, limit=10)
        finally:
            await store.close()

    pages = asyncio.run(scenario())
    assert [len(p.items) for p in pages] == [10, 10, 5]
    assert [p.id for page in pages for p in page.items] == _newest_first(records)
    assert pages[-1].next_cursor is None


def test_a_full_last_page_has_no_next_cursor(db_url: str, make_prediction: MakePrediction) -> None:
    async def scenario() -> list[Page]:
        store = await _open_with(db_url, _records(make_prediction, 20))
        try:
            return await _all_pages(store, limit=10)
        finally:
            await store.close()

    assert [len(p.items) for p in asyncio.run(scenario())] == [10, 10]


def test_filters_combine_and_paginate(db_url: str, make_prediction: MakePrediction) -> None:
    records = _records(make_prediction, 25)

    async def scenario() -> dict[str, list[str]]:
        store = await _open_with(db_url, records)
        try:
            found = {}
            cases: dict[str, dict[str, Any]] = {
                "owner": {"owner": "acme"},
                "owner+name": {"owner": "acme", "name": "resnet"},
                "status": {"status": PredictionStatus.SUCCEEDED},
                "all": {"owner": "other", "name": "bert", "status": PredictionStatus.PENDING},
                "none": {"owner": "nobody"},
            }
            for label, filters in cases.items():
                pages = await _all_pages(store, limit=3, **filters)
                found[label] = [p.id for page in pages for p in page.items]
            return found
        finally:
            await store.close()

    found = asyncio.run(scenario())

    def expect(keep: Callable[[Prediction], bool]) -> list[str]:
        return _newest_first([p for p in records if keep(p)])

    assert found["owner"] == expect(lambda p: p.owner == "acme")
    assert found["owner+name"] == expect(lambda p: p.owner == "acme" and p.name == "resnet")
    assert found["status"] == expect(lambda p: p.status is PredictionStatus.SUCCEEDED)
    assert found["all"] == expect(
        lambda p: (p.owner, p.name, p.status) == ("other", "bert", PredictionStatus.PENDING)
    )
    assert found["all"]  # the fixture data does contain such records
    assert found["none"] == []


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    ("cursor", "problem"),
    [
        ("%%%", "base64"),
        ("é", "base64"),
        ("", "not JSON"),
        (_b64(b"{not json"), "not JSON"),
        (_b64(b'{"a": 1}'), "[created_at, id] pair"),
        (_b64(b'["yesterday", "p1"]'), "ISO 8601"),
        (_b64(b'["2025-01-01T00:00:00", "p1"]'), "no timezone"),
    ],
)
def test_invalid_cursor_names_the_problem(db_url: str, cursor: str, problem: str) -> None:
    async def scenario() -> None:
        store = await PredictionStore.open(db_url)
        try:
            await store.list(cursor=cursor)
        finally:
            await store.close()

    with pytest.raises(InvalidCursor, match="cursor") as caught:
        asyncio.run(scenario())
    assert problem in caught.value.message
    assert isinstance(caught.value, InvalidRequest)


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_limit_out_of_range_is_rejected(db_url: str, limit: int) -> None:
    async def scenario() -> None:
        store = await PredictionStore.open(db_url)
        try:
            await store.list(limit=limit)
        finally:
            await store.close()

    with pytest.raises(InvalidRequest, match="between 1 and 1000"):
        asyncio.run(scenario())


def test_unfinished_lists_pending_and_processing_oldest_first(
    db_url: str, make_prediction: MakePrediction
) -> None:
    records = _records(make_prediction, 25)

    async def scenario() -> list[Prediction]:
        store = await _open_with(db_url, records)
        try:
            return await store.unfinished()
        finally:
            await store.close()

    unfinished = asyncio.run(scenario())
    expected = [
        p
        for p in sorted(records, key=lambda p: (p.created_at, p.id))
        if p.status in (PredictionStatus.PENDING, PredictionStatus.PROCESSING)
    ]
    assert unfinished == expected
    assert unfinished
