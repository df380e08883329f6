"""`Prefer: wait=N`: the finished record within the budget, else the unfinished one to poll."""

from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("demo/iris", "fixtures/echo", "fixtures/sleeps")

SETOSA = [5.1, 3.5, 1.4, 0.2]
ISO_DURATION = re.compile(r"^PT\d+(\.\d+)?S$")


@pytest.mark.parametrize(
    "prefer",
    [
        pytest.param([("Prefer", "wait=10")], id="wait"),
        pytest.param([("Prefer", "respond-async, wait=10")], id="respond-async-ignored"),
        pytest.param([("Prefer", "respond-async"), ("Prefer", "wait=10")], id="two-headers"),
        pytest.param([("Prefer", 'handling=lenient; x=1, wait="10"')], id="rfc7240-list"),
        pytest.param([("Prefer", "wait")], id="bare-wait-as-replicate"),
    ],
)
async def test_prefer_wait_returns_the_finished_record(api, prefer: list[tuple[str, str]]) -> None:
    response = await api.http.post(
        "/v1/predictions",
        json={"model": "demo/iris", "input": {"features": [SETOSA]}},
        headers=prefer,
    )

    assert response.status_code == 201, response.text
    record = response.json()
    assert record["status"] == "succeeded", record
    assert record["output"]["label"] == [0]
    assert record["error"] is None
    assert ISO_DURATION.match(record["execution_time"]), record["execution_time"]
    assert ISO_DURATION.match(record["setup_time"]), record["setup_time"]
    for field in ("created_at", "updated_at", "started_at", "completed_at"):
        assert record[field].endswith("Z"), (field, record[field])
    assert response.headers["Location"] == f"/v1/predictions/{record['id']}"


async def test_wait_that_runs_out_returns_the_unfinished_record_which_later_succeeds(api) -> None:
    started = time.monotonic()
    response = await api.post("fixtures/sleeps", {"seconds": 3}, prefer="wait=1")
    waited = time.monotonic() - started

    assert response.status_code == 201, response.text
    record = response.json()
    assert record["status"] in ("pending", "processing"), record
    assert record["output"] is None
    assert waited >= 0.9, f"answered after {waited:.2f} s; it should wait about 1 s"
    location = response.headers["Location"]
    assert location == f"/v1/predictions/{record['id']}"

    done = await api.wait_for(record["id"])

    assert done["status"] == "succeeded", done
    assert done["output"] == 3
    # Records are committed in order, so once a later waited prediction is stored, this one is:
    # from here on GET reads it back from the database.
    await api.create("fixtures/echo", {"text": "flush"}, prefer="wait=10")
    polled = await api.http.get(location)
    assert polled.status_code == 200, polled.text
    assert polled.json() == done


async def test_wait_returns_as_soon_as_the_model_finishes(api) -> None:
    started = time.monotonic()
    record = await api.create("fixtures/sleeps", {"seconds": 0.2}, prefer="wait=60")
    waited = time.monotonic() - started

    assert record["status"] == "succeeded", record
    assert record["output"] == 0.2
    # A wait that ran its course would take 60 s; half of that leaves a busy machine its room.
    assert waited < 30, f"waited {waited:.1f} s for a 0.2 s prediction"
