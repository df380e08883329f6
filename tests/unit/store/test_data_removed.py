"""A prediction's data_removed on each backend: false for a new record, true once marked, and
never set back by the record's own later writes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from foretell.domain import Prediction, PredictionStatus
from foretell.store import PredictionStore


def test_marked_records_say_their_data_was_removed_and_keep_saying_it(
    db_url: str, make_prediction: Callable[..., Prediction]
) -> None:
    async def scenario() -> list[bool]:
        store = await PredictionStore.open(db_url)
        try:
            made, other = make_prediction("p-made"), make_prediction("p-other", offset_s=1)
            await store.insert(made)
            await store.insert(other)
            fresh = await store.get(made.id)
            assert fresh is not None
            await store.mark_data_removed([made.id, made.id, "p-unknown"])
            # The record's own write after that (a late update) does not clear it.
            await store.update(replace(made, status=PredictionStatus.SUCCEEDED))
            found = [await store.get(p.id) for p in (made, other)]
            return [fresh.data_removed, *(p.data_removed for p in found if p is not None)]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [False, True, False]
