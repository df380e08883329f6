"""A record's timings: queue_time from acceptance to start, execution_time on the replica."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("fixtures/sleeps",)

DURATION = re.compile(r"^PT(\d+(\.\d+)?)S$")


def seconds(duration: str) -> float:
    match = DURATION.match(duration)
    assert match, duration
    return float(match.group(1))


def instant(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def test_queue_time_is_the_wait_from_creation_to_start(api) -> None:
    running = await api.create("fixtures/sleeps", {"seconds": 1.0})
    await api.wait_for(running["id"], {"processing"})
    queued = await api.create("fixtures/sleeps", {"seconds": 0})
    assert queued["queue_time"] is None  # not started yet

    done = await api.wait_for(queued["id"])

    assert done["status"] == "succeeded"
    waited = (instant(done["started_at"]) - instant(done["created_at"])).total_seconds()
    assert seconds(done["queue_time"]) == pytest.approx(waited, abs=1e-6)
    assert waited > 0.3  # it waited behind the running one
    assert seconds(done["execution_time"]) < 1.0
