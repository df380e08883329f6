"""POST /v1/predictions/{id}/cancel: a queued prediction never runs; a running one's output is
discarded; a finished one cannot be canceled (409)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("fixtures/echo", "fixtures/sleeps")

# fixtures/sleeps has one replica and no batching: one prediction runs at a time, in order.
SLEEPS = "fixtures/sleeps"


async def test_cancel_pending_prediction_means_it_never_runs(api) -> None:
    running = await api.create(SLEEPS, {"seconds": 1.0})
    await api.wait_for(running["id"], {"processing"})
    await api.create(SLEEPS, {"seconds": 0})
    victim = await api.create(SLEEPS, {"seconds": 0})

    response = await api.http.post(f"/v1/predictions/{victim['id']}/cancel")

    assert response.status_code == 200, response.text
    canceled = response.json()
    assert canceled["id"] == victim["id"]
    assert canceled["status"] == "canceled"
    assert canceled["output"] is None
    assert canceled["started_at"] is None
    # One queued behind the canceled one has run: the queue has moved past it for good.
    after = await api.create(SLEEPS, {"seconds": 0}, prefer="wait=20")
    assert after["status"] == "succeeded", after
    later = await api.get(victim["id"])
    assert later["status"] == "canceled"
    assert later["output"] is None
    assert later["started_at"] is None
    assert later["execution_time"] is None


async def test_cancel_processing_prediction_stays_canceled_after_the_model_finishes(api) -> None:
    running = await api.create(SLEEPS, {"seconds": 1.5})
    await api.wait_for(running["id"], {"processing"})

    response = await api.http.post(f"/v1/predictions/{running['id']}/cancel")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "canceled"
    assert response.json()["output"] is None
    # The next prediction on the single replica runs only once the canceled one has returned.
    after = await api.create(SLEEPS, {"seconds": 0}, prefer="wait=20")
    assert after["status"] == "succeeded", after
    later = await api.get(running["id"])
    assert later["status"] == "canceled"
    assert later["output"] is None
    assert later["error"] is None


async def test_cancel_of_a_finished_prediction_is_409_naming_its_status(api) -> None:
    done = await api.create("fixtures/echo", {"text": "done"}, prefer="wait=10")
    assert done["status"] == "succeeded", done

    response = await api.http.post(f"/v1/predictions/{done['id']}/cancel")

    assert response.status_code == 409, response.text
    assert "succeeded" in response.json()["detail"]
    assert (await api.get(done["id"]))["status"] == "succeeded"


async def test_cancel_twice_is_409_naming_canceled(api) -> None:
    running = await api.create(SLEEPS, {"seconds": 0.5})
    first = await api.http.post(f"/v1/predictions/{running['id']}/cancel")
    assert first.status_code == 200, first.text

    second = await api.http.post(f"/v1/predictions/{running['id']}/cancel")

    assert second.status_code == 409, second.text
    assert "canceled" in second.json()["detail"]
    drained = await api.create(SLEEPS, {"seconds": 0}, prefer="wait=20")
    assert drained["status"] == "succeeded", drained


async def test_cancel_of_an_unknown_prediction_is_404(api) -> None:
    response = await api.http.post("/v1/predictions/no-such-id/cancel")

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "prediction 'no-such-id' not found"}
