"""GET /v1/predictions: newest first, filtered by model and status, paged with a cursor."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = (
    "demo/iris",
    "fixtures/echo",
    "fixtures/raises-in-predict",
    "fixtures/sleeps",
)


async def test_pages_of_two_cover_every_prediction_once(api) -> None:
    created = [
        (await api.create("fixtures/echo", {"text": f"page {i}"}, prefer="wait=10"))["id"]
        for i in range(5)
    ]

    seen: list[str] = []
    pages = 0
    url: str | None = "/v1/predictions?model=fixtures/echo&limit=2"
    while url is not None:
        response = await api.http.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["results"]) <= 2
        seen += [p["id"] for p in page["results"]]
        url = page["next"]
        pages += 1

    assert len(seen) == len(set(seen)), "a prediction appeared on two pages"
    assert set(created) <= set(seen)
    assert pages >= 3
    # Newest first: the five just created lead the list, last one first.
    assert seen[:5] == created[::-1]


async def test_model_filter_returns_only_that_model(api) -> None:
    echo = await api.create("fixtures/echo", {"text": "mine"}, prefer="wait=10")
    iris = await api.create("demo/iris", {"features": [[5.1, 3.5, 1.4, 0.2]]}, prefer="wait=10")

    listed = await api.list_all(model="fixtures/echo")

    assert {(p["model"]["owner"], p["model"]["name"]) for p in listed} == {("fixtures", "echo")}
    assert echo["id"] in {p["id"] for p in listed}
    assert iris["id"] not in {p["id"] for p in listed}


async def test_status_filter_returns_only_that_status(api) -> None:
    failed = await api.create("fixtures/raises-in-predict", {"text": "x"}, prefer="wait=10")
    assert failed["status"] == "failed", failed

    only_failed = await api.list_all(model="fixtures/raises-in-predict", status="failed")
    only_succeeded = await api.list_all(model="fixtures/raises-in-predict", status="succeeded")

    assert failed["id"] in {p["id"] for p in only_failed}
    assert {p["status"] for p in only_failed} == {"failed"}
    assert only_succeeded == []


async def test_status_filter_across_models(api) -> None:
    ok = await api.create("fixtures/echo", {"text": "ok"}, prefer="wait=10")
    bad = await api.create("fixtures/raises-in-predict", {"text": "x"}, prefer="wait=10")

    failed_ids = {p["id"] for p in await api.list_all(status="failed", limit=50)}

    assert bad["id"] in failed_ids
    assert ok["id"] not in failed_ids


async def test_listed_records_match_get(api) -> None:
    record = await api.create("fixtures/echo", {"text": "same"}, prefer="wait=10")

    [first] = (await api.http.get("/v1/predictions?model=fixtures/echo&limit=1")).json()["results"]

    assert first == record == await api.get(record["id"])


async def test_stored_scalar_output_is_listed(api) -> None:
    """A model may return a bare number (fixtures/sleeps does); it must survive storage."""
    record = await api.create("fixtures/sleeps", {"seconds": 0.25}, prefer="wait=10")
    assert record["output"] == 0.25

    response = await api.http.get("/v1/predictions?model=fixtures/sleeps&status=succeeded")

    assert response.status_code == 200, response.text
    listed = {p["id"]: p for p in response.json()["results"]}
    assert listed[record["id"]]["output"] == 0.25


@pytest.mark.parametrize(
    ("query", "status_code", "naming"),
    [
        pytest.param("cursor=garbage", 400, "cursor", id="cursor-not-ours"),
        pytest.param("cursor=", 400, "cursor", id="cursor-empty"),
        pytest.param("status=done", 422, "status", id="unknown-status"),
        pytest.param("model=iris", 422, "model", id="model-without-owner"),
        pytest.param("limit=0", 422, "limit", id="limit-zero"),
        pytest.param("limit=1001", 422, "limit", id="limit-too-big"),
    ],
)
async def test_invalid_list_parameters_are_rejected_naming_them(
    api, query: str, status_code: int, naming: str
) -> None:
    response = await api.http.get(f"/v1/predictions?{query}")

    assert response.status_code == status_code, response.text
    assert naming in str(response.json()["detail"])
