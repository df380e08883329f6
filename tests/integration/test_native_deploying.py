"""Models load in the background once the app is up: while one deploys, its status says so and
its predictions wait for it (within their Prefer budget) instead of failing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models" / "fixtures"
# setup() sleeps 2 s, after the replica process has spawned and imported foretell.
MODELS = {"fixtures/slow-setup": FIXTURES / "slow-setup", "fixtures/echo": FIXTURES / "echo"}


def seconds(duration: str) -> float:
    found = re.fullmatch(r"PT(\d+(?:\.\d+)?)S", duration)
    assert found, duration
    return float(found.group(1))


async def test_status_is_deploying_until_setup_finishes_then_ready(serve) -> None:
    async with serve(MODELS, ready=False) as api:
        loading = await api.http.get("/health/ready")
        model = (await api.http.get("/v1/models/fixtures/slow-setup")).json()

        assert loading.status_code == 503, loading.text
        assert loading.json()["status"] == "deploying"
        assert loading.json()["deployments"]["fixtures/slow-setup:1"] == "deploying"
        assert model["latest_version"] is None
        assert model["versions"][0]["deployment"]["status"] == "deploying"

        ready = await api.wait_ready()

        assert ready.json()["deployments"] == {
            "fixtures/echo:1": "ready",
            "fixtures/slow-setup:1": "ready",
        }
        model = (await api.http.get("/v1/models/fixtures/slow-setup")).json()
        assert model["latest_version"] == 1
        assert model["versions"][0]["status"] == "ready"
        assert model["versions"][0]["input_schema"]["required"] == ["x"]


async def test_predictions_for_a_deploying_model_wait_for_it_then_run(serve) -> None:
    async with serve(MODELS, ready=False) as api:
        queued = await api.post("fixtures/slow-setup", {"x": 1})
        started = time.monotonic()
        short = await api.post("fixtures/slow-setup", {"x": 2}, prefer="wait=1")
        short_wait = time.monotonic() - started
        waited = await api.create("fixtures/slow-setup", {"x": 3}, prefer="wait=30")

        assert queued.status_code == 201, queued.text
        assert queued.json()["status"] == "pending"
        assert queued.headers["Location"] == f"/v1/predictions/{queued.json()['id']}"
        assert short.status_code == 201, short.text
        assert short.json()["status"] == "pending"
        assert short_wait >= 0.9
        assert waited["status"] == "succeeded", waited
        assert waited["output"] == {"ok": True}
        assert waited["model"]["version_number"] == 1
        # setup_time is the model's load, charged to the first prediction its replica ran
        first = await api.wait_for(queued.json()["id"])
        assert first["status"] == "succeeded", first
        assert seconds(first["setup_time"]) >= 1.5  # setup() sleeps 2 s
        assert seconds(waited["setup_time"]) == 0
        done = await api.wait_for(short.json()["id"])
        assert done["status"] == "succeeded", done
        assert seconds(done["setup_time"]) == 0
