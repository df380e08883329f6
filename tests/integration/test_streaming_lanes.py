"""A create that asks for the stream gets it the same on both lanes: the fast lane (api.hotpath,
which `api.http` reaches) and FastAPI's route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

pytestmark = pytest.mark.anyio

MODELS = ("fixtures/echo",)
ECHO = {"model": "fixtures/echo", "input": {"text": "hi", "n": 2}}


@pytest.fixture
async def fastapi_only(api: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api.app)
    headers = {"Authorization": api.http.headers["Authorization"]}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as client:
        yield client


async def events(client: httpx.AsyncClient, **request: Any) -> tuple[int, list[tuple[str, str]]]:
    async with aconnect_sse(client, "POST", "/v1/predictions", **request) as source:
        got = [(e.event, e.data) async for e in source.aiter_sse()]
        assert source.response.headers["x-prediction-id"]
        return source.response.status_code, got


@pytest.mark.parametrize(
    "request_args",
    [{"json": {**ECHO, "stream": True}}, {"json": ECHO}],  # aconnect_sse sends Accept too
    ids=["stream true", "accept event-stream"],
)
async def test_both_lanes_answer_the_same_stream(
    api: Any, fastapi_only: httpx.AsyncClient, request_args: dict[str, Any]
) -> None:
    fast = await events(api.http, **request_args)
    slow = await events(fastapi_only, **request_args)

    assert fast == slow
    status, got = fast
    assert status == 200
    assert ("output", '{"text":"hi","n":2}') in got
    assert got[-1] == ("done", '{"status":"succeeded"}')


async def test_a_refused_create_is_json_before_any_stream(api: Any) -> None:
    body = {"model": "fixtures/nope", "input": {}, "stream": True}
    answer = await api.http.post("/v1/predictions", json=body)

    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/json")
