"""A JSON body nested past `max_json_depth` (64) is refused with a 400 naming the limit and where,
in the route's own dialect, on every route that reads one, and before anything is stored.

The attack this stops: a body nested 250-1,000 levels deep was parsed (orjson reads 1,024) and
stored, but no answer holding it could be written (orjson writes 254), so the POST, the GET of
it and every list including it answered 500, and its record stayed pending for ever."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio

MODELS = ("demo/iris", "fixtures/echo")
DEEP = (
    253  # the attack's depth for `n`: {"text": "a", "n": …} is then 254 levels, all orjson writes
)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def json_with(template: bytes, depth: int = DEEP) -> bytes:
    """`template` with its `DEEP` placeholder replaced by `depth` nested arrays."""
    return template.replace(b"DEEP", nested(depth))


def said(response: Any) -> str:
    """The error message, whichever dialect's envelope carries it."""
    body = response.json()
    for key in ("detail", "error", "error_message"):
        if isinstance(body.get(key), str):
            message: str = body[key]
            return message
    raise AssertionError(f"no error message in {body}")


async def test_the_attack_is_400_naming_the_limit_and_where_and_stores_nothing(api) -> None:
    before = await api.list_all(model="fixtures/echo")

    response = await api.http.post(
        "/v1/predictions",
        content=json_with(b'{"model": "fixtures/echo", "input": {"text": "a", "n": DEEP}}'),
    )

    assert response.status_code == 400, response.text
    assert response.json() == {
        "detail": "request body nests deeper than 64 levels of arrays and objects "
        "(at input.n.0.0.0.0.0.0…); send it less deeply nested"
    }
    assert await api.list_all(model="fixtures/echo") == before


async def test_deeper_than_orjson_reads_is_the_same_400(api) -> None:
    response = await api.http.post("/v1/predictions", content=nested(5000))

    assert response.status_code == 400, response.text
    assert said(response).startswith("request body nests deeper than 64 levels")
    assert "(at character 1025)" in said(response)


async def test_a_body_at_the_limit_is_taken_and_its_refusal_by_the_model_is_recorded(api) -> None:
    # 1 (body) + 1 (input) + 62 levels of `n`: exactly the limit; echo wants an integer.
    body = json_with(b'{"model": "fixtures/echo", "input": {"text": "a", "n": DEEP}}', 62)

    response = await api.http.post("/v1/predictions", content=body)

    assert response.status_code == 201, response.text
    record = await api.wait_for(response.json()["id"])
    assert record["status"] == "failed", record
    assert record["error"]["source"] == "user"
    listed = await api.list_all(model="fixtures/echo", status="failed")
    assert record["id"] in {p["id"] for p in listed}


async def test_a_deep_value_in_a_field_that_is_not_allowed_is_400_not_a_bare_500(api) -> None:
    # Was: the 422 echoing the refused webhook could not be written, and the answer was the
    # server's plain-text 500.
    body = json_with(
        b'{"model": "fixtures/echo", "input": {"text": "a"}, '
        b'"webhook": {"url": "https://example.com/hook", "x": DEEP}}',
        300,
    )

    response = await api.http.post("/v1/predictions", content=body)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert "(at webhook.x.0.0.0.0.0.0…)" in said(response)


# Every route that reads a JSON body, and the keys of its dialect's error envelope.
ROUTES = {
    "native": (
        "POST /v1/predictions",
        b'{"model": "demo/iris", "input": {"features": DEEP}}',
        ["detail"],
    ),
    "slashml": (
        "POST /model-deployment/v1/models/demo%2Firis/predict",
        b'{"model_input": {"features": DEEP}}',
        ["error", "full_message"],
    ),
    "spice": ("POST /v1/predict", b'{"predictions": DEEP}', ["error_message", "status"]),
    "gpux": ("POST /models/demo/iris/predict", b'{"features": DEEP}', ["detail"]),
    "baseten": ("POST /model/demo-iris/production/predict", b'{"features": DEEP}', ["error"]),
    "oip_v2": (
        "POST /v2/models/demo/iris/infer",
        b'{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": DEEP}]}',
        ["error"],
    ),
    "keys": ("POST /v1/keys", b'{"owner": "acme", "scope": "read", "name": DEEP}', ["detail"]),
    "environments": (
        "PUT /v1/models/demo/iris/environments/staging",
        b'{"version_number": DEEP}',
        ["detail"],
    ),
}


@pytest.mark.parametrize("route", list(ROUTES))
async def test_every_route_that_reads_json_refuses_it_in_its_own_dialect(api, route: str) -> None:
    call, template, envelope = ROUTES[route]
    method, path = call.split(" ")
    before = await api.list_all()

    response = await api.http.request(method, path, content=json_with(template))

    assert response.status_code == 400, response.text
    assert sorted(response.json()) == envelope
    assert said(response).startswith("request body nests deeper than 64 levels")
    assert "0.0.0.0" in said(response)  # where it went too deep
    assert [p["id"] for p in await api.list_all()] == [p["id"] for p in before]
