"""PredictionStore.list with `max_bytes`: a page ends where its records' bytes would pass the
cap, always holding one, and its cursor continues exactly there. A thousand 20 MB records were
all loaded into one listing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from foretell.domain import Prediction
from foretell.store import Page, PredictionStore

MakePrediction = Callable[..., Prediction]
KB = 1024


def sizes_kb(make_prediction: MakePrediction, db_url: str, kbs: list[int]) -> list[Page]:
    """Store records whose input is about `kbs` KB each (the first newest), then list them all
    with a 100 KB cap; the pages in order."""

    async def scenario() -> list[Page]:
        store = await PredictionStore.open(db_url)
        try:
            for i, kb in enumerate(kbs):  # created_at falls with i: the listing's order
                text = "é" * (kb * KB // 2)  # two bytes in UTF-8, one character
                await store.insert(make_prediction(f"p{i}", offset_s=-i, input={"text": text}))
            pages, cursor = [], None
            while True:
                page = await store.list(limit=10, max_bytes=100 * KB, cursor=cursor)
                pages.append(page)
                if page.next_cursor is None:
                    return pages
                cursor = page.next_cursor
        finally:
            await store.close()

    return asyncio.run(scenario())


def ids(page: Page) -> list[str]:
    return [p.id for p in page.items]


def test_a_page_ends_before_its_bytes_pass_the_cap_and_next_goes_on_from_there(
    db_url: str, make_prediction: MakePrediction
) -> None:
    """Bytes, not characters: 40 KB of 'é' is 20,480 characters."""
    pages = sizes_kb(make_prediction, db_url, [40, 40, 40, 10, 10, 90, 5])

    assert [ids(p) for p in pages] == [["p0", "p1"], ["p2", "p3", "p4"], ["p5", "p6"]]


def test_a_record_larger_than_the_cap_comes_alone(
    db_url: str, make_prediction: MakePrediction
) -> None:
    pages = sizes_kb(make_prediction, db_url, [150, 1, 300])

    assert [ids(p) for p in pages] == [["p0"], ["p1"], ["p2"]]


def test_the_count_limit_still_holds_for_small_records(
    db_url: str, make_prediction: MakePrediction
) -> None:
    pages = sizes_kb(make_prediction, db_url, [1] * 25)

    assert [len(p.items) for p in pages] == [10, 10, 5]
    assert [i for p in pages for i in ids(p)] == [f"p{i}" for i in range(25)]


def test_without_a_cap_every_record_up_to_the_limit_is_listed(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> Page:
        store = await PredictionStore.open(db_url)
        try:
            for i in range(3):
                text = "a" * (200 * KB)
                await store.insert(make_prediction(f"p{i}", offset_s=-i, input={"text": text}))
            return await store.list(limit=10)
        finally:
            await store.close()

    assert ids(asyncio.run(scenario())) == ["p0", "p1", "p2"]
