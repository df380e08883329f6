"""Waiting on a prediction another API process runs: woken by notices of its end (or of notices
missed), re-reading it each time, never missing an end heard during a read; a stop answers at
once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from foretell.domain import Prediction, PredictionStatus
from foretell.service.remote import Watchers

pytestmark = pytest.mark.anyio
LONG_S = 30.0  # far past what any of these waits should take


def record(status: PredictionStatus) -> Prediction:
    now = datetime.now(UTC)
    return Prediction(
        id="p1",
        owner="acme",
        name="m",
        version_number=1,
        status=status,
        input={},
        created_at=now,
        updated_at=now,
    )


class Store:
    """The record as another process writes it; counts reads, and can announce mid-read."""

    def __init__(self, watchers: Watchers) -> None:
        self.status = PredictionStatus.PROCESSING
        self.reads = 0
        self.end_during_read = False
        self._watchers = watchers

    async def read(self) -> Prediction | None:
        self.reads += 1
        found = record(self.status)
        if self.end_during_read:  # it ends just after this read saw it running
            self.end_during_read = False
            self.status = PredictionStatus.SUCCEEDED
            self._watchers.heard("p1")
        return found


async def test_a_notice_of_its_end_answers_the_wait_with_the_ended_record() -> None:
    watchers = Watchers()
    store = Store(watchers)
    waiting = asyncio.create_task(watchers.wait("p1", store.read, LONG_S))
    await asyncio.sleep(0.01)
    watchers.heard("another-prediction")
    await asyncio.sleep(0.01)
    assert not waiting.done()
    store.status = PredictionStatus.SUCCEEDED
    watchers.heard("p1")
    found = await asyncio.wait_for(waiting, LONG_S)
    assert found is not None
    assert found.status is PredictionStatus.SUCCEEDED


async def test_an_end_heard_during_a_read_is_not_missed() -> None:
    watchers = Watchers()
    store = Store(watchers)
    store.end_during_read = True
    found = await asyncio.wait_for(watchers.wait("p1", store.read, LONG_S), LONG_S)
    assert found is not None
    assert found.status is PredictionStatus.SUCCEEDED
    assert store.reads == 2


async def test_missed_notices_wake_every_waiter_to_read_again() -> None:
    watchers = Watchers()
    store = Store(watchers)
    waiting = [asyncio.create_task(watchers.wait("p1", store.read, LONG_S)) for _ in range(3)]
    await asyncio.sleep(0.01)
    store.status = PredictionStatus.CANCELED
    watchers.heard(None)  # the listener reconnected: whatever ended meanwhile was not heard
    found = await asyncio.wait_for(asyncio.gather(*waiting), LONG_S)
    assert {p.status for p in found if p is not None} == {PredictionStatus.CANCELED}


async def test_the_wait_ends_with_the_record_as_it_stands_when_its_time_is_up() -> None:
    watchers = Watchers()
    store = Store(watchers)
    found = await watchers.wait("p1", store.read, 0.05)
    assert found is not None
    assert found.status is PredictionStatus.PROCESSING


async def test_a_stop_answers_every_wait_at_once() -> None:
    watchers = Watchers()
    store = Store(watchers)
    waiting = asyncio.create_task(watchers.wait("p1", store.read, LONG_S))
    await asyncio.sleep(0.01)
    watchers.stop()
    found = await asyncio.wait_for(waiting, 5)
    assert found is not None
    assert found.status is PredictionStatus.PROCESSING
