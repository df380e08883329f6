"""A stored record that no answer could carry (written before bodies had a depth limit, or by
another program) does not take down anything that reads it: every list that includes it, the
owner's and the admin's, and a GET of it, answer 200 with a note in place of the field; and a
start fails it, if unfinished, instead of leaving it pending for ever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _app import FIXTURES

from foretell.domain import Prediction, PredictionStatus
from foretell.store import PredictionStore

pytestmark = pytest.mark.anyio

# Where the attack's `n` went too deep, as the note says it.
TOO_DEEP = "the stored input cannot be shown: it nests deeper than 200 levels (at n.0.0.0.0.0.0.0…)"


def lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def record(
    prediction_id: str, status: PredictionStatus, input: dict[str, Any], age_s: int
) -> Prediction:
    created = datetime.now(UTC) - timedelta(seconds=age_s)
    return Prediction(
        id=prediction_id,
        owner="fixtures",
        name="echo",
        version_number=1,
        status=status,
        input=input,
        output={"text": "a", "n": 1} if status is PredictionStatus.SUCCEEDED else None,
        created_at=created,
        updated_at=created,
        completed_at=created if status.terminal else None,
        created_by="acme",
    )


async def stored_first(db_url: str, *records: Prediction) -> None:
    """Write `records` with the store itself, as a server without the depth limit did."""
    store = await PredictionStore.open(db_url)
    try:
        for r in records:
            await store.insert(r)
    finally:
        await store.close()


async def test_lists_and_reads_answer_with_a_note_and_a_start_fails_what_cannot_run(
    serve, db_url: str
) -> None:
    # On each backend (tests/conftest.py); on SQLite, db_url is the file in serve's data dir.
    deep = {"text": "a", "n": lists(253)}  # 254 levels: stored, but no answer can hold it
    await stored_first(
        db_url,
        record("fine", PredictionStatus.SUCCEEDED, {"text": "b"}, age_s=30),
        record("deep-done", PredictionStatus.SUCCEEDED, deep, age_s=20),
        record("deep-pending", PredictionStatus.PENDING, deep, age_s=10),
    )

    async with serve({"fixtures/echo": FIXTURES / "echo"}, db=db_url) as api:
        pending = await api.wait_for("deep-pending", {"failed"})
        assert pending["error"]["source"] == "internal"
        assert pending["error"]["message"] == (
            "this prediction cannot be run as stored (its stored input: it nests deeper than "
            "200 levels (at n.0.0.0.0.0.0.0…)); it was not run"
        )
        assert pending["input"] == {"unreadable": TOO_DEEP}

        done = await api.get("deep-done")
        assert (done["status"], done["input"]) == ("succeeded", {"unreadable": TOO_DEEP})
        assert done["output"] == {"text": "a", "n": 1}

        for params in ({}, {"model": "fixtures/echo"}, {"status": "succeeded"}):
            listed = {p["id"]: p for p in await api.list_all(**params)}
            assert listed["deep-done"]["input"] == {"unreadable": TOO_DEEP}, params
            assert listed["fine"]["input"] == {"text": "b"}, params

        made = await api.http.post("/v1/keys", json={"owner": "acme", "scope": "read"})
        assert made.status_code == 201, made.text
        owners = await api.http.get(
            "/v1/predictions", headers={"Authorization": f"Bearer {made.json()['key']}"}
        )
        assert owners.status_code == 200, owners.text
        assert [p["id"] for p in owners.json()["results"]] == ["deep-pending", "deep-done", "fine"]
