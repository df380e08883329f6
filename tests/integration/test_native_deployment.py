"""POST /v1/models/{owner}/{name}/versions/{v}/deployment (start, stop, replicas) and
POST /v1/repository/rescan on the in-process app: what each answers, and what each refuses."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves (conftest.py): only these start.
MODELS = ("fixtures/echo",)
DEPLOYMENT = "/v1/models/fixtures/echo/versions/1/deployment"


async def change(api: Any, body: object) -> Any:
    return await api.http.post(DEPLOYMENT, json=body)


async def test_stop_then_start_with_replicas(api) -> None:
    stopped = await change(api, {"state": "stopped"})
    refused = await api.http.post(
        "/v1/predictions", json={"model": "fixtures/echo:1", "input": {"text": "x"}}
    )
    started = await change(api, {"state": "started", "replicas": 2})
    again = await change(api, {"state": "started", "replicas": 2})
    ranged = await change(api, {"replicas": {"min": 1, "max": 3, "idle_s": 60}})
    restored = await change(api, {"replicas": 1})

    assert stopped.status_code == 200, stopped.text
    record = stopped.json()
    assert (record["version_number"], record["status"]) == (1, "stopped")
    assert record["deployment"]["replicas"]["running"] == 0
    assert record["deployment"]["stopped_at"] is not None
    assert refused.status_code == 503, refused.text
    assert refused.json() == {
        "detail": "model 'fixtures/echo:1' is not ready: deployment is stopped"
    }
    assert refused.headers["retry-after"]
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "ready"
    replicas = started.json()["deployment"]["replicas"]
    assert (replicas["min"], replicas["max"]) == (2, 2)
    assert replicas["running"] >= 1  # ready once one is; the other may still be starting
    assert started.json()["deployment"]["ready_at"] > record["deployment"]["stopped_at"]
    assert again.json()["deployment"]["ready_at"] == started.json()["deployment"]["ready_at"]
    assert ranged.status_code == 200, ranged.text
    ranged_replicas = ranged.json()["deployment"]["replicas"]
    assert (ranged_replicas["min"], ranged_replicas["max"]) == (1, 3)
    assert restored.json()["deployment"]["replicas"]["max"] == 1
    created = await api.create("fixtures/echo:1", {"text": "x"}, prefer="wait=30")
    assert created["status"] == "succeeded", created


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({}, ["body"], "give state, replicas or both: this body changes nothing"),
        ({"state": "up"}, ["body", "state"], "Input should be 'started' or 'stopped'"),
        (
            {"replicas": 65},
            ["body", "replicas"],
            '65 replicas: a count must be 1 to 64; to stop the version, send "state": '
            '"stopped"; for none while idle, give a range, e.g. {"min": 0, "max": 1}',
        ),
        (
            {"replicas": "2"},
            ["body", "replicas"],
            "replicas must be a count (1 to 64) or an object {min, max, idle_s, "
            "target_wait_s}, not str",
        ),
        (
            {"replicas": {"min": True}},
            ["body", "replicas", "min"],
            "Input should be a valid integer",
        ),
        (
            {"replicas": {"max": 100}},
            ["body", "replicas", "max"],
            "Input should be less than or equal to 64",
        ),
        (
            {"replicas": {"min": 3, "max": 2}},
            ["body", "replicas"],
            "min (3) is above max (2): min must be at most max",
        ),
        (
            {"state": "stopped", "replicas": 2},
            ["body", "replicas"],
            'replicas apply to a started version: send them with "state": "started", or alone',
        ),
        ({"state": "started", "when": "now"}, ["body", "when"], "Extra inputs are not permitted"),
    ],
)
async def test_a_bad_body_names_the_field_and_the_limit(
    api, body: object, loc: list[str], message: str
) -> None:
    response = await change(api, body)

    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert (problem["loc"], problem["msg"]) == (loc, message)


async def test_an_unknown_version_is_404(api) -> None:
    response = await api.http.post(
        "/v1/models/fixtures/echo/versions/9/deployment", json={"state": "started"}
    )

    assert response.status_code == 404, response.text
    assert response.json()["detail"].startswith("model 'fixtures/echo' has no version 9")


async def test_a_rescan_with_nothing_new_changes_nothing(api) -> None:
    response = await api.http.post("/v1/repository/rescan")

    assert response.status_code == 200, response.text
    assert response.json() == {"added": [], "removed": []}
