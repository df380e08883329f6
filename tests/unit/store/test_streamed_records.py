"""A record's `streamed` (how a streaming model's output grew) is stored and read back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from _databases import execute
from foretell.domain import OutputStream, Prediction, PredictionStatus
from foretell.store import PredictionStore

MakePrediction = Callable[..., Prediction]


@pytest.mark.parametrize("mode", [OutputStream.TEXT, OutputStream.ITEMS])
def test_streamed_is_set_by_an_update_while_it_runs_and_read_back(
    db_url: str, make_prediction: MakePrediction, mode: OutputStream
) -> None:
    p = make_prediction("p-streamed")
    whole = make_prediction("p-whole")

    async def scenario() -> tuple[Prediction | None, Prediction | None, Prediction | None]:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(p)
            await store.insert(whole)
            inserted = await store.get(p.id)
            # A progress save: the first output came, the record says how it grows.
            p.status, p.streamed = PredictionStatus.PROCESSING, mode
            p.output = "tok" if mode is OutputStream.TEXT else ["tok"]
            store.update_soon(p)
            await store.flush()
            return inserted, await store.get(p.id), await store.get(whole.id)
        finally:
            await store.close()

    inserted, running, got_whole = asyncio.run(scenario())
    assert inserted is not None
    assert inserted.streamed is None
    assert running is not None
    assert running.streamed is mode
    assert running.output == p.output
    assert got_whole is not None
    assert got_whole.streamed is None


def test_a_streamed_value_this_version_does_not_know_reads_as_whole(
    db_url: str, make_prediction: MakePrediction, caplog: pytest.LogCaptureFixture
) -> None:
    p = make_prediction("p-future", streamed=OutputStream.TEXT, output="abc")

    async def insert() -> None:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(p)
        finally:
            await store.close()

    async def read() -> Prediction | None:
        store = await PredictionStore.open(db_url)
        try:
            return await store.get(p.id)
        finally:
            await store.close()

    asyncio.run(insert())
    execute(db_url, "UPDATE predictions SET streamed = 'tokens' WHERE id = :id", id=p.id)
    with caplog.at_level(logging.WARNING, logger="foretell.store.rows"):
        got = asyncio.run(read())
    assert got is not None
    assert got.streamed is None
    assert got.output == "abc"
    assert "'tokens'" in caplog.text
