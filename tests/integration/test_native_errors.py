"""Requests the native API refuses, each with its status and a message that says why."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("demo/iris", "fixtures/echo")

IRIS_INPUT = {"features": [[5.1, 3.5, 1.4, 0.2]]}


async def test_malformed_json_is_400_naming_the_parse_error(api) -> None:
    response = await api.http.post(
        "/v1/predictions", content=b'{"model": "demo/iris", "input": {', headers=_json()
    )

    assert response.status_code == 400, response.text
    assert "not valid JSON" in response.json()["detail"]


async def test_empty_body_is_400(api) -> None:
    response = await api.http.post("/v1/predictions", content=b"", headers=_json())

    assert response.status_code == 400, response.text
    assert "empty" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"model": "demo", "input": {}}, "model", id="model-without-owner"),
        pytest.param({"model": "demo/iris:x", "input": {}}, "model", id="version-not-a-number"),
        pytest.param({"input": {}}, "model", id="model-missing"),
        pytest.param({"model": "demo/iris"}, "input", id="input-missing"),
        pytest.param({"model": "demo/iris", "input": [1]}, "input", id="input-not-an-object"),
    ],
)
async def test_bad_request_fields_are_422_at_their_body_location(
    api, body: dict[str, object], field: str
) -> None:
    response = await api.http.post("/v1/predictions", json=body)

    assert response.status_code == 422, response.text
    locations = [e["loc"] for e in response.json()["detail"]]
    assert ["body", field] in locations, locations


async def test_unknown_model_is_404_naming_it(api) -> None:
    response = await api.post("nobody/nothing", {})

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "model 'nobody/nothing' not found"}


async def test_unknown_version_is_404_listing_the_versions_that_exist(api) -> None:
    response = await api.post("demo/iris:7", IRIS_INPUT)

    assert response.status_code == 404, response.text
    detail = response.json()["detail"]
    assert "versions that exist: 1, 2" in detail
    assert "7" in detail


@pytest.mark.parametrize(
    "prefer", ["wait=0", "wait=61", "wait=abc", "wait=-1", "wait=1.5", 'wait="10']
)
async def test_invalid_prefer_is_400_and_creates_nothing(api, prefer: str) -> None:
    before = {p["id"] for p in await api.list_all(model="fixtures/echo")}

    response = await api.post("fixtures/echo", {"text": "x"}, prefer=prefer)

    assert response.status_code == 400, response.text
    assert "wait" in response.json()["detail"] or "Prefer" in response.json()["detail"]
    assert {p["id"] for p in await api.list_all(model="fixtures/echo")} == before


async def test_validate_input_header_that_is_not_a_boolean_is_400_naming_it(api) -> None:
    response = await api.post("demo/iris", IRIS_INPUT, headers={"Validate-Input": "maybe"})

    assert response.status_code == 400, response.text
    assert "Validate-Input" in response.json()["detail"]


async def test_unknown_prediction_is_404(api) -> None:
    response = await api.http.get("/v1/predictions/00000000-0000-0000-0000-000000000000")

    assert response.status_code == 404, response.text
    assert response.json() == {
        "detail": "prediction '00000000-0000-0000-0000-000000000000' not found"
    }


async def test_body_over_the_limit_is_413_naming_the_limit(small_body_api) -> None:
    body = b'{"model": "demo/iris", "input": {"text": "' + b"x" * 4096 + b'"}}'

    response = await small_body_api.http.post("/v1/predictions", content=body, headers=_json())

    assert response.status_code == 413, response.text
    assert "2048 bytes" in response.json()["detail"]


async def test_streamed_body_over_the_limit_is_413_without_a_content_length(
    small_body_api,
) -> None:
    async def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"model": "demo/iris", "input": {"text": "'
        for _ in range(8):
            yield b"x" * 512
        yield b'"}}'

    response = await small_body_api.http.post("/v1/predictions", content=chunks(), headers=_json())

    assert response.status_code == 413, response.text
    assert "2048 bytes" in response.json()["detail"]


async def test_body_under_the_limit_is_read(small_body_api) -> None:
    response = await small_body_api.post("nobody/nothing", {"text": "x" * 1000})

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "model 'nobody/nothing' not found"}


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}
