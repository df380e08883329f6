"""A webhook URL past the length limit is refused with 422 at creation, naming the field and
the limit, in both of the request's forms; no prediction is made."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio

MODELS = ("fixtures/echo",)
MODEL = "fixtures/echo"
LONG = "https://93.184.215.14/" + "a" * 100_000


async def ids(api: Any) -> set[str]:
    return {p["id"] for p in await api.list_all(model=MODEL)}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"webhook": {"url": LONG}}, id="object"),
        pytest.param({"webhook": LONG}, id="bare-url"),
    ],
)
async def test_a_100k_character_webhook_url_is_422(api: Any, body: dict[str, Any]) -> None:
    before = await ids(api)

    response = await api.http.post(
        "/v1/predictions", json={"model": MODEL, "input": {"text": "x"}, **body}
    )

    assert response.status_code == 422, response.text[:2000]
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "webhook", "url"]
    assert (error["type"], error["ctx"]) == ("url_too_long", {"max_length": 2048})
    assert "2048" in error["msg"]
    assert await ids(api) == before


async def test_a_url_that_grows_past_the_limit_when_escaped_is_422(api: Any) -> None:
    """723 characters with 700 spaces are 2,123 once percent-escaped, as the URL is stored and
    sent."""
    url = "https://93.184.215.14/" + " " * 700 + "x"
    response = await api.http.post(
        "/v1/predictions", json={"model": MODEL, "input": {"text": "x"}, "webhook": url}
    )

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "webhook", "url"]
    assert "the URL has 2123 characters, more than the limit of 2048" in error["msg"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param(
            "https://" + ("a" * 63 + ".") * 5 + "com/",
            "has 323 characters, more than DNS's limit of 253",
            id="long-host",
        ),
        pytest.param(
            "http://example.com:0/",
            "the URL's port is 0; a receiver listens on a port from 1 to 65535",
            id="port-0",
        ),
    ],
)
async def test_a_webhook_url_no_delivery_can_reach_is_422(api: Any, url: str, problem: str) -> None:
    before = await ids(api)

    response = await api.http.post(
        "/v1/predictions", json={"model": MODEL, "input": {"text": "x"}, "webhook": url}
    )

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "webhook", "url"]
    assert problem in error["msg"]
    assert await ids(api) == before
