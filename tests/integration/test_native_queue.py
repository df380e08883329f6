"""A pending prediction shows where it waits: its position, the queue's depth and an ETA."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models" / "fixtures"
SLEEPS = "fixtures/sleeps"  # python runtime, one replica, batches of one


async def test_waiting_predictions_show_position_depth_and_eta(serve) -> None:
    async with serve({SLEEPS: FIXTURES / "sleeps"}) as api:
        # One timed batch first: the ETA is an estimate from observed batch times.
        timed = await api.create(SLEEPS, {"seconds": 0.2}, prefer="wait=20")
        assert timed["queue"] is None
        running = await api.create(SLEEPS, {"seconds": 1.0})
        await api.wait_for(running["id"], {"processing"})
        waiting = [await api.create(SLEEPS, {"seconds": 0}) for _ in range(3)]

        records = [await api.get(p["id"]) for p in waiting]
        queues = [r["queue"] for r in records]
        now_running = await api.get(running["id"])

        assert now_running["queue"] is None
        assert [(q["position"], q["depth"]) for q in queues] == [(0, 3), (1, 3), (2, 3)]
        etas = [q["eta_s"] for q in queues]
        assert 0 < etas[0] < etas[1] < etas[2], etas
        # Each waits one more 0.2 s-ish batch than the one before it.
        assert etas[2] - etas[1] == pytest.approx(etas[1] - etas[0])

        canceled = await api.http.post(f"/v1/predictions/{waiting[0]['id']}/cancel")
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["queue"] is None
        moved_up = (await api.get(waiting[1]["id"]))["queue"]
        assert (moved_up["position"], moved_up["depth"]) == (0, 2)

        for p in waiting[1:]:
            done = await api.wait_for(p["id"])
            assert done["status"] == "succeeded"
            assert done["queue"] is None
