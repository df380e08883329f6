"""Cancel-After: not started by its deadline → aborted; still running at it → canceled."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("fixtures/sleeps",)

SLEEPS = "fixtures/sleeps"  # one replica, no batching: one runs at a time


async def test_a_queued_prediction_past_its_deadline_is_aborted_and_never_runs(api) -> None:
    running = await api.create(SLEEPS, {"seconds": 1.5})
    await api.wait_for(running["id"], {"processing"})
    queued = await api.create(SLEEPS, {"seconds": 0}, headers={"Cancel-After": "300ms"})
    assert queued["deadline_at"] is not None

    aborted = await api.wait_for(queued["id"], timeout_s=5)

    assert aborted["status"] == "aborted"
    assert aborted["started_at"] is None
    assert aborted["output"] is None
    assert "deadline passed before it started" in aborted["logs"]
    assert (await api.wait_for(running["id"]))["status"] == "succeeded"
    assert (await api.get(queued["id"]))["status"] == "aborted"  # and it stays so
    listed = await api.list_all(model=SLEEPS, status="aborted")
    assert queued["id"] in {p["id"] for p in listed}


async def test_a_running_prediction_past_its_deadline_is_canceled(api) -> None:
    running = await api.create(SLEEPS, {"seconds": 1.5}, headers={"Cancel-After": "0.5"})
    await api.wait_for(running["id"], {"processing"})

    canceled = await api.wait_for(running["id"], timeout_s=5)

    assert canceled["status"] == "canceled"
    assert canceled["output"] is None
    assert "deadline passed while it was running" in canceled["logs"]


async def test_an_invalid_cancel_after_is_refused_and_creates_nothing(api) -> None:
    before = len(await api.list_all(model=SLEEPS))
    response = await api.post(SLEEPS, {"seconds": 0}, headers={"Cancel-After": "soon"})
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Cancel-After: 'soon' is not a duration; use e.g. 30s, 1m30s, 500ms or 2h"
    }
    assert len(await api.list_all(model=SLEEPS)) == before
