"""What a request cannot make the app do, whichever route it takes: redirect before auth (a
trailing slash is 404), parse a huge header on the event loop, echo unbounded input back in an
error, or log a traceback (or run a prediction) when its client leaves mid-body."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from starlette.types import Message

from foretell.api.app import asgi

pytestmark = pytest.mark.anyio

MODELS = ("fixtures/echo",)
SETTINGS = {"default_model": "fixtures/echo"}  # what GPUX's POST /predict runs

LONG = "a" * 10_000
CUT = "…(10000 characters)"  # how an error shows a 10,000-character value: 100 of them, and this


@pytest.fixture
async def keyless(api: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the same app without any key, as an attacker comes."""
    transport = httpx.ASGITransport(app=asgi(api.app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("DELETE", "/v1/keys/%2F", {"detail": "Not Found"}),
        ("GET", "/v1/predictions/", {"detail": "Not Found"}),
        ("GET", "/v1/models/", {"detail": "Not Found"}),
        ("GET", "/metrics/", {"detail": "Not Found"}),
        ("GET", "/v2/%2F%2F", {"error": "no route GET /v2///"}),  # in OIP's envelope
    ],
)
async def test_a_trailing_slash_is_404_not_a_redirect_to_the_host_header(
    keyless: httpx.AsyncClient, method: str, path: str, body: dict[str, str]
) -> None:
    response = await keyless.request(method, path, headers={"Host": "evil.example"})

    assert response.status_code == 404, response.text
    assert "location" not in response.headers
    assert response.json() == body


async def test_a_prefer_header_past_1_kib_is_refused_before_it_is_parsed(api: Any) -> None:
    prefer = "wait=1," + "x=1," * 1000  # 4,007 characters, a thousand preferences
    response = await api.post("fixtures/echo", {"text": "a"}, prefer=prefer)

    assert response.status_code == 400, response.text
    assert response.json() == {
        "detail": "header Prefer is 4007 characters long, more than the limit of 1024"
    }


@pytest.mark.parametrize("header", ["Cancel-After", "Validate-Input"])
async def test_other_parsed_headers_past_1_kib_are_refused(api: Any, header: str) -> None:
    response = await api.post("fixtures/echo", {"text": "a"}, headers={header: "1" * 1_000_000})

    assert response.status_code == 400, response.text
    assert response.json() == {
        "detail": f"header {header} is 1000000 characters long, more than the limit of 1024"
    }


@pytest.mark.parametrize(
    ("method", "url", "headers", "status"),
    [
        ("GET", f"/v1/predictions/{LONG}", {}, 404),
        ("GET", f"/v1/predictions?cursor={LONG}", {}, 400),
        ("DELETE", f"/v1/keys/{LONG}", {}, 404),
        ("POST", f"/model-deployment/v1/models/{LONG}/predict", {}, 404),
        ("POST", f"/v2/models/fixtures/echo/versions/{LONG}/infer", {}, 400),
        ("POST", "/v1/predictions", {"Content-Encoding": LONG}, 415),
        ("POST", "/v1/predictions", {"Cancel-After": "9" * 1000 + "x"}, 400),
    ],
)
async def test_errors_echo_at_most_100_characters_of_what_was_sent(
    api: Any, method: str, url: str, headers: dict[str, str], status: int
) -> None:
    content = b'{"model": "fixtures/echo", "input": {"text": "a"}}' if method == "POST" else None
    response = await api.http.request(method, url, headers=headers, content=content)

    assert response.status_code == status, response.text[:300]
    assert len(response.content) < 400, response.text[:300]
    assert CUT in response.text or "…(1001 characters)" in response.text, response.text


# Each dialect's synchronous route, with a body that is valid JSON as far as it arrives.
CUT_SHORT = [
    ("native", "/v1/predictions", b'{"model": "fixtures/echo", "input": {"text": "a"}}'),
    ("gpux", "/predict", b'{"text": "a"}'),
    ("oip", "/v2/models/fixtures/echo/infer", b'{"inputs": []}'),
    ("slashml", "/model-deployment/v1/models/fixtures%2Fecho/predict", b'{"model_input": {}}'),
    ("spice", "/v1/predict", b'{"predictions": [{"model_name": "fixtures/echo"}]}'),
    ("baseten", "/model/fixtures-echo/production/predict", b'{"text": "a"}'),
]


@pytest.mark.parametrize(("dialect", "path", "sent"), CUT_SHORT, ids=[c[0] for c in CUT_SHORT])
async def test_a_client_leaving_mid_body_is_one_quiet_line_and_runs_nothing(
    api: Any, caplog: pytest.LogCaptureFixture, dialect: str, path: str, sent: bytes
) -> None:
    before = (await api.http.get("/v1/predictions")).json()["results"]
    received: list[Message] = [
        {"type": "http.request", "body": sent, "more_body": True},  # of 10 MB declared
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return received.pop(0) if received else {"type": "http.disconnect"}

    async def send(message: Message) -> None:  # uvicorn drops what is sent to a gone client
        pass

    caplog.set_level(logging.DEBUG, logger="foretell")
    await asgi(api.app)(_scope(api, path), receive, send)  # returns, never raises

    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert (await api.http.get("/v1/predictions")).json()["results"] == before
    assert [r.getMessage() for r in caplog.records if "left before" in r.getMessage()] == [
        f"POST {_template(path)}: the client left before its body was read"
    ]


def _scope(api: Any, raw_path: str) -> dict[str, Any]:
    """What uvicorn gives the app for a POST of a 10 MB body to `raw_path`, as the admin key."""
    key = api.http.headers["Authorization"].encode()
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"authorization", key),
            (b"content-type", b"application/json"),
            (b"content-length", b"10485760"),
        ],
        "state": {},
    }


def _template(path: str) -> str:
    """How the log names a route: the hot lane by its template, FastAPI's by its path."""
    return {"/v2/models/fixtures/echo/infer": "/v2/models/{owner}/{name}/infer"}.get(
        path, unquote(path)
    )
