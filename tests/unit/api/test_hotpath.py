"""HotPaths serves its exact routes itself, renders their errors, and passes the rest on."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import Response

from foretell.api.hotpath import Call, HotPaths
from foretell.api.responses import Json
from foretell.config import Settings
from foretell.errors import ModelNotFound

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def echo(call: Call) -> Response:
    return Json({"body": call.body.decode(), "prefer": call.headers.getlist("prefer")})


async def missing(call: Call) -> Response:
    raise ModelNotFound("acme/nope")


async def broken(call: Call) -> Response:
    raise RuntimeError("bug")


def client() -> httpx.AsyncClient:
    app = FastAPI()
    app.state.service = object()
    app.state.settings = Settings(repository=Path("."))

    @app.post("/elsewhere")
    async def elsewhere() -> dict[str, str]:
        return {"lane": "fastapi"}

    routes = {("POST", "/echo"): echo, ("POST", "/missing"): missing, ("POST", "/broken"): broken}
    transport = httpx.ASGITransport(app=HotPaths(app, routes))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_an_exact_route_is_served_by_its_handler_with_body_and_headers() -> None:
    async with client() as http:
        response = await http.post(
            "/echo", content=b"hello", headers=[("Prefer", "wait=5"), ("Prefer", "x=1")]
        )
    assert response.status_code == 200
    assert response.json() == {"body": "hello", "prefer": ["wait=5", "x=1"]}


async def test_other_methods_and_paths_go_to_the_app() -> None:
    async with client() as http:
        elsewhere = await http.post("/elsewhere")
        wrong_method = await http.get("/echo")
    assert elsewhere.json() == {"lane": "fastapi"}
    assert wrong_method.status_code == 404


async def test_domain_errors_render_through_the_one_error_table() -> None:
    async with client() as http:
        response = await http.post("/missing")
    assert response.status_code == 404
    assert response.json() == {"detail": "model 'acme/nope' not found"}


async def test_a_bug_is_a_json_500_without_details() -> None:
    async with client() as http:
        response = await http.post("/broken")
    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal error (RuntimeError); the server log has the details"
    }
