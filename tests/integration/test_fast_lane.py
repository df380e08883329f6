"""The hot routes' fast lane (api.hotpath) and FastAPI's route answer every request alike,
for the native create route and for the dialects' prediction routes, errors included."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from foretell.api.hotpath import HotPaths, hot_routes
from foretell.domain.access import Scope

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("demo/iris", "demo/sentiment")
SETTINGS = {"default_model": "demo/sentiment"}  # what GPUX's /predict runs

IRIS = {"model": "demo/iris", "input": {"features": [[5.1, 3.5, 1.4, 0.2]]}}
# Fields that differ between any two predictions, whichever lane made them.
_PER_PREDICTION = {
    "id",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "urls",
    "request_id",
}
_TIMINGS = {"setup_time", "execution_time", "queue_time"}


@pytest.fixture
async def fastapi_only(api: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the FastAPI app alone: every request takes FastAPI's router."""
    transport = httpx.ASGITransport(app=api.app)
    headers = {"Authorization": api.http.headers["Authorization"]}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as client:
        yield client


CASES: list[tuple[str, dict[str, Any]]] = [
    ("sync success", {"json": IRIS, "headers": {"Prefer": "wait=10"}}),
    ("bad JSON", {"content": b'{"model": ', "headers": {"Content-Type": "application/json"}}),
    ("empty body", {"content": b"", "headers": {"Content-Type": "application/json"}}),
    ("missing field", {"json": {"input": {}}}),
    ("unknown model", {"json": {"model": "demo/nope", "input": {}}}),
    ("bad Prefer", {"json": IRIS, "headers": {"Prefer": "wait=999"}}),
    ("bad Validate-Input", {"json": IRIS, "headers": {"Validate-Input": "maybe"}}),
    ("bad Cancel-After", {"json": IRIS, "headers": {"Cancel-After": "soon"}}),
    ("another auth scheme", {"json": IRIS, "headers": {"Authorization": "Basic dXNlcg=="}}),
    ("unknown key", {"json": IRIS, "headers": {"Authorization": "Bearer ft_0000_nope"}}),
    (
        "invalid input, validated",
        {
            "json": {"model": "demo/iris", "input": {"features": "x"}},
            "headers": {"Validate-Input": "true"},
        },
    ),
]


@pytest.mark.parametrize(("case", "request_args"), CASES, ids=[c for c, _ in CASES])
async def test_both_lanes_give_the_same_status_headers_and_body(
    api: Any, fastapi_only: httpx.AsyncClient, case: str, request_args: dict[str, Any]
) -> None:
    fast = await api.http.post("/v1/predictions", **request_args)
    slow = await fastapi_only.post("/v1/predictions", **request_args)

    assert fast.status_code == slow.status_code, (case, fast.text, slow.text)
    assert _comparable(fast) == _comparable(slow), case
    for header in ("content-type", "preference-applied", "retry-after"):
        assert fast.headers.get(header) == slow.headers.get(header), header
    assert ("location" in fast.headers) == ("location" in slow.headers)


async def test_the_fast_lane_takes_only_its_exact_routes(api: Any) -> None:
    # A trailing slash is not the hot route: FastAPI answers it (404: it redirects nothing).
    response = await api.http.post("/v1/predictions/", json=IRIS)
    assert response.status_code == 404, response.text


OIP_IRIS = {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
SENTIMENT = {"input_ids": [101, 2293, 102], "attention_mask": [1, 1, 1]}
UNKNOWN_KEY = {"Authorization": "Bearer ft_0000_nope"}
# (case, path, request arguments): every hot route of the dialects, answering and refusing.
DIALECT_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("oip infer", "/v2/models/demo/iris/infer", {"json": {"inputs": [OIP_IRIS]}}),
    (
        "oip infer, pinned",
        "/v2/models/demo/iris/versions/1/infer",
        {"json": {"inputs": [OIP_IRIS]}},
    ),
    ("oip escaped name", "/v2/models/demo%2Firis/infer", {"json": {"inputs": [OIP_IRIS]}}),
    ("oip bad version", "/v2/models/demo/iris/versions/x/infer", {"json": {"inputs": []}}),
    ("oip unknown model", "/v2/models/demo/nope/infer", {"json": {"inputs": [OIP_IRIS]}}),
    ("oip bad JSON", "/v2/models/demo/iris/infer", {"content": b'{"inputs": ['}),
    ("oip bad tensor", "/v2/models/demo/iris/infer", {"json": {"inputs": [{"name": "features"}]}}),
    ("oip unknown key", "/v2/models/demo/iris/infer", {"json": {}, "headers": UNKNOWN_KEY}),
    ("gpux default", "/predict", {"json": SENTIMENT}),
    ("gpux named", "/models/demo/iris/predict", {"json": {"features": [[5.1, 3.5, 1.4, 0.2]]}}),
    ("gpux batch", "/models/demo/sentiment/predict", {"json": {"items": [SENTIMENT] * 2}}),
    ("gpux bad input", "/predict", {"json": {"input_ids": "x", "attention_mask": [1]}}),
    ("gpux bad JSON", "/predict", {"content": b"{"}),
    ("gpux unknown model", "/models/demo/nope/predict", {"json": {}}),
    ("gpux unknown key", "/predict", {"json": SENTIMENT, "headers": UNKNOWN_KEY}),
]


@pytest.mark.parametrize(
    ("case", "path", "request_args"), DIALECT_CASES, ids=[c for c, _, _ in DIALECT_CASES]
)
async def test_the_dialects_hot_routes_answer_alike_in_both_lanes(
    api: Any, fastapi_only: httpx.AsyncClient, case: str, path: str, request_args: dict[str, Any]
) -> None:
    fast = await api.http.post(path, **request_args)
    slow = await fastapi_only.post(path, **request_args)
    assert fast.status_code == slow.status_code, (case, fast.text, slow.text)
    fast_body, slow_body = fast.json(), slow.json()
    if isinstance(fast_body, dict) and "parameters" in fast_body:  # OIP: ids of two records
        for body in (fast_body, slow_body):
            body.pop("id")
            body.pop("parameters")
    assert fast_body == slow_body, case
    for header in ("content-type", "retry-after", "www-authenticate"):
        assert fast.headers.get(header) == slow.headers.get(header), header


async def test_each_hot_route_is_the_route_fastapi_would_have_taken(
    api: Any, fastapi_only: httpx.AsyncClient
) -> None:
    """A read key is refused by the route's own scope check, whose message names the route's
    template: so FastAPI's first matching route is the hot route's twin, with the same scope."""
    reader = (await api.app.state.keys.create(owner="demo", scope=Scope.READ)).key
    lanes = HotPaths(api.app, hot_routes(api.app))
    templates = [*lanes.exact, *((m, t) for m, _, t, _ in lanes.templated)]
    assert len(templates) == 5
    for method, template in templates:
        path = re.sub(r"{(\w+)}", lambda m: "1" if m[1] == "version" else "acme", template)
        matched = lanes.match(method, path)
        assert matched is not None
        assert matched[0] == template
        route = matched[1]
        headers = {"Authorization": f"Bearer {reader}"}
        fast = await api.http.request(method, path, json={}, headers=headers)
        slow = await fastapi_only.request(method, path, json={}, headers=headers)
        assert slow.status_code == fast.status_code == 403, (template, slow.text)
        needs = f"{method} {template} needs a key with scope '{route.scope.value}'"
        assert needs in slow.text, (template, slow.text)
        assert fast.json() == slow.json()


def _comparable(response: httpx.Response) -> Any:
    body = response.json()
    if isinstance(body, dict) and "id" in body:
        return {
            k: (v is None) if k in _TIMINGS else v
            for k, v in body.items()
            if k not in _PER_PREDICTION
        }
    return body
