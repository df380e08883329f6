"""Creating predictions on real models: the async default, the record's shape, versions, load."""

from __future__ import annotations

import asyncio
import random
import re
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("demo/iris", "demo/digits", "fixtures/echo")

SETOSA = [5.1, 3.5, 1.4, 0.2]
SEED_FIELDS = {
    "id",
    "model",
    "created_at",
    "status",
    "updated_at",
    "setup_time",
    "execution_time",
    "error",
    "input",
    "output",
}
ISO_DURATION = re.compile(r"^PT\d+(\.\d+)?S$")


def assert_seed_shape(record: dict[str, Any]) -> None:
    """Every field seed 001 names, with its nested shape; extra fields are allowed."""
    assert record.keys() >= SEED_FIELDS, SEED_FIELDS - record.keys()
    assert set(record["model"]) == {"owner", "name", "version_number"}
    assert record["error"] is None or set(record["error"]) == {"source", "message", "detail"}
    for field in ("created_at", "updated_at"):
        assert record[field].endswith("Z"), record[field]
        assert datetime.fromisoformat(record[field]).utcoffset() == timedelta(0)


async def test_create_without_prefer_returns_201_pending_with_location(api) -> None:
    response = await api.post("demo/iris", {"features": [SETOSA]})

    assert response.status_code == 201, response.text
    record = response.json()
    assert_seed_shape(record)
    assert record["status"] == "pending"
    assert record["model"] == {"owner": "demo", "name": "iris", "version_number": 2}
    assert record["input"] == {"features": [SETOSA]}
    assert record["output"] is None
    assert record["error"] is None
    assert response.headers["Location"] == f"/v1/predictions/{record['id']}"
    await api.wait_for(record["id"])  # leave nothing running for the next test


async def test_async_prediction_is_polled_to_success_with_setosa_label(api) -> None:
    created = await api.create("demo/iris", {"features": [SETOSA]})

    done = await api.wait_for(created["id"])

    assert done["status"] == "succeeded", done
    assert_seed_shape(done)
    assert done["id"] == created["id"]
    assert done["output"]["label"] == [0]
    [probabilities] = done["output"]["probabilities"]
    assert len(probabilities) == 3
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    assert ISO_DURATION.match(done["execution_time"]), done["execution_time"]
    assert done["updated_at"] >= done["created_at"]


async def test_get_returns_the_same_record_as_the_wait(api) -> None:
    finished = await api.create("demo/iris", {"features": [SETOSA]}, prefer="wait=10")

    assert await api.get(finished["id"]) == finished


async def test_latest_version_runs_without_a_version_and_pinned_version_differs(api) -> None:
    latest = await api.create("demo/iris", {"features": [SETOSA]}, prefer="wait=10")
    pinned = await api.create("demo/iris:1", {"features": [SETOSA]}, prefer="wait=10")

    assert (latest["status"], pinned["status"]) == ("succeeded", "succeeded")
    assert latest["model"]["version_number"] == 2
    assert pinned["model"]["version_number"] == 1
    assert latest["output"]["label"] == pinned["output"]["label"] == [0]
    # Version 1 is a logistic regression, version 2 a random forest: not the same probabilities.
    assert latest["output"]["probabilities"] != pinned["output"]["probabilities"]


async def test_json_posted_as_form_content_type_is_accepted(api) -> None:
    """What `curl -d` sends: JSON labelled application/x-www-form-urlencoded."""
    body = orjson.dumps({"model": "fixtures/echo", "input": {"text": "curl", "n": 2}})

    response = await api.http.post(
        "/v1/predictions",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Prefer": "wait=10"},
    )

    assert response.status_code == 201, response.text
    assert response.json()["output"] == {"text": "curl", "n": 2}


async def test_fifty_concurrent_waiting_predictions_on_digits_all_succeed(api) -> None:
    """Batched together or not, every request gets its own rows back, in its own shape."""
    rng = random.Random(1234)
    inputs = [
        [[rng.randint(0, 16) for _ in range(64)] for _ in range(1 + i % 3)] for i in range(50)
    ]

    async def predict(features: list[list[int]]) -> Any:
        return await api.post("demo/digits", {"features": features}, prefer="wait=30")

    responses = await asyncio.gather(*(predict(f) for f in inputs))

    records = [r.json() for r in responses]
    assert [r.status_code for r in responses] == [201] * 50
    assert [r["status"] for r in records] == ["succeeded"] * 50, [
        r["error"] for r in records if r["error"]
    ]
    for features, record in zip(inputs, records, strict=True):
        assert record["input"] == {"features": features}
        labels, probabilities = record["output"]["label"], record["output"]["probabilities"]
        assert len(labels) == len(probabilities) == len(features)
        for label, row in zip(labels, probabilities, strict=True):
            assert len(row) == 10
            assert label == row.index(max(row))
    # The same inputs one at a time give the same answers: no rows crossed between requests.
    for features, record in zip(inputs[:5], records[:5], strict=True):
        alone = await api.create("demo/digits", {"features": features}, prefer="wait=10")
        assert alone["output"]["label"] == record["output"]["label"]
        for got, want in zip(
            record["output"]["probabilities"], alone["output"]["probabilities"], strict=True
        ):
            assert got == pytest.approx(want, abs=1e-5)


async def test_webhook_is_kept_on_the_record(api) -> None:
    webhook = {"url": "https://hooks.example.com/foretell", "events": ["completed"]}

    response = await api.http.post(
        "/v1/predictions",
        json={"model": "fixtures/echo", "input": {"text": "hook"}, "webhook": webhook},
        headers={"Prefer": "wait=10"},
    )

    assert response.status_code == 201, response.text
    assert response.json()["webhook"] == webhook
    assert (await api.get(response.json()["id"]))["webhook"] == webhook


async def test_webhook_without_a_valid_url_is_422_at_its_location(api) -> None:
    response = await api.http.post(
        "/v1/predictions",
        json={"model": "fixtures/echo", "input": {"text": "hook"}, "webhook": {"url": "nope"}},
    )

    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "webhook", "url"]]
