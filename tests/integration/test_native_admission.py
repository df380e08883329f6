"""A full queue answers 429 with Retry-After and creates nothing; room frees as work finishes."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("fixtures/tiny-queue",)

# One replica, batches of one, one waiting place: two unfinished predictions at most.
TINY = "fixtures/tiny-queue"


async def test_a_full_queue_refuses_with_429_and_retry_after_and_creates_nothing(api) -> None:
    running = await api.create(TINY, {"seconds": 1.5})
    await api.wait_for(running["id"], {"processing"})
    waiting = await api.create(TINY, {"seconds": 0})
    before = {p["id"] for p in await api.list_all(model=TINY)}

    refused = await api.post(TINY, {"seconds": 0})

    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json() == {
        "detail": "model 'fixtures/tiny-queue:1' is overloaded: "
        "1 predictions already queued; retry later"
    }
    assert {p["id"] for p in await api.list_all(model=TINY)} == before

    # Both accepted predictions still run, and their finishing makes room again.
    for accepted in (running, waiting):
        assert (await api.wait_for(accepted["id"]))["status"] == "succeeded"
    again = await api.create(TINY, {"seconds": 0}, prefer="wait=20")
    assert again["status"] == "succeeded", again


async def test_canceling_a_waiting_prediction_frees_its_place_at_once(api) -> None:
    running = await api.create(TINY, {"seconds": 1.5})
    await api.wait_for(running["id"], {"processing"})
    waiting = await api.create(TINY, {"seconds": 0})
    assert (await api.post(TINY, {"seconds": 0})).status_code == 429

    canceled = await api.http.post(f"/v1/predictions/{waiting['id']}/cancel")
    assert canceled.status_code == 200, canceled.text

    accepted = await api.post(TINY, {"seconds": 0})
    assert accepted.status_code == 201, accepted.text
    await api.wait_for(accepted.json()["id"])
    await api.wait_for(running["id"])
