"""The hot routes' fast lane (api.hotpath) and FastAPI's route answer every request alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio

IRIS = {"model": "demo/iris", "input": {"features": [[5.1, 3.5, 1.4, 0.2]]}}
# Fields that differ between any two predictions, whichever lane made them.
_PER_PREDICTION = {"id", "created_at", "updated_at", "started_at", "completed_at", "urls"}
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
    # A trailing slash is not the hot route: FastAPI handles (and redirects) it as before.
    response = await api.http.post("/v1/predictions/", json=IRIS)
    assert response.status_code in (307, 404, 405), response.text


def _comparable(response: httpx.Response) -> Any:
    body = response.json()
    if isinstance(body, dict) and "id" in body:
        return {
            k: (v is None) if k in _TIMINGS else v
            for k, v in body.items()
            if k not in _PER_PREDICTION
        }
    return body
