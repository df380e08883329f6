"""The retention sweep's schedule: often enough for the retention, and a failed round (the store
down) is logged and tried again rather than ending the sweeps."""

from __future__ import annotations

import asyncio

import pytest

from foretell.files.retention import Schedule, interval_for


def test_the_interval_is_a_quarter_of_the_retention_at_most_a_minute() -> None:
    assert interval_for(1.0) == 0.25
    assert interval_for(120.0) == 30.0
    assert interval_for(86400.0) == 60.0


def test_a_failed_sweep_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []

    async def go() -> None:
        again = asyncio.Event()

        async def sweep() -> None:
            rounds.append(len(rounds))
            if len(rounds) == 1:
                raise OSError("the store is down")
            again.set()

        schedule = Schedule(sweep, 0.0)
        schedule.start()
        await asyncio.wait_for(again.wait(), 30)
        await schedule.close()
        await schedule.close()  # twice is harmless

    asyncio.run(go())
    assert rounds[:2] == [0, 1]
    assert "retention sweep failed; trying again" in caplog.text
    assert "the store is down" in caplog.text
