"""HotPaths serves its exact routes itself, renders their errors, and passes the rest on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response

from foretell.api.dialects.oip_v2 import routes as oip_v2
from foretell.api.errors import install
from foretell.api.hotpath import Call, HotPaths, HotRoute, hot_route, hot_routes
from foretell.api.responses import Json
from foretell.config import Settings
from foretell.domain.access import Principal, Scope
from foretell.errors import ModelNotFound, Unauthenticated

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


class ReadOnlyKeys:
    """Knows one key, `good`, of owner acme with scope read."""

    async def principal(self, key: str) -> Principal:
        if key != "good":
            raise Unauthenticated("invalid API key")
        return Principal("acme", Scope.READ, "key_1")


def client(authenticator: object = None) -> httpx.AsyncClient:
    app = FastAPI()
    app.state.service = object()
    app.state.settings = Settings(repository=Path("."))
    app.state.authenticator = authenticator

    @app.post("/elsewhere")
    async def elsewhere() -> dict[str, str]:
        return {"lane": "fastapi"}

    routes = {
        ("POST", "/echo"): HotRoute(echo, Scope.READ),
        ("POST", "/missing"): HotRoute(missing, Scope.READ),
        ("POST", "/broken"): HotRoute(broken, Scope.READ),
        ("POST", "/write"): HotRoute(echo, Scope.PREDICT),
    }
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


async def test_the_fast_lane_authenticates_before_it_reads_the_body() -> None:
    async with client(ReadOnlyKeys()) as http:
        missing_key = await http.post("/echo", content=b"x")
        wrong_key = await http.post("/echo", content=b"x", headers={"X-API-Key": "bad"})
        too_weak = await http.post("/write", content=b"x", headers={"X-API-Key": "good"})
        allowed = await http.post("/echo", content=b"x", headers={"X-API-Key": "good"})
    assert missing_key.status_code == 401
    assert missing_key.headers["www-authenticate"].startswith('Bearer realm="foretell"')
    assert "no API key; send one as Authorization: Bearer <key>" in missing_key.json()["detail"]
    assert wrong_key.status_code == 401
    assert wrong_key.json() == {"detail": "invalid API key"}
    assert too_weak.status_code == 403
    assert too_weak.json() == {
        "detail": "this API key's scope is 'read'; POST /write needs a key with scope 'predict'"
    }
    assert allowed.status_code == 200


def declared(router: APIRouter, **include: Any) -> FastAPI:
    """An app including `router`, on which `/echo/{owner}` (read) and `/write` (predict,
    anonymous) are declared once each."""
    hot_route(router, "POST", "/echo/{owner}", echo, scope=Scope.READ)
    hot_route(router, "POST", "/write", echo, scope=Scope.PREDICT, anonymous=True, name="w")
    app = FastAPI()
    install(app)
    app.include_router(router, **include)
    app.state.service = object()
    app.state.settings = Settings(repository=Path("."))
    app.state.authenticator = ReadOnlyKeys()
    app.state.anonymous = None
    return app


async def test_one_declaration_registers_the_fastapi_route_and_the_fast_lane_entry() -> None:
    app = declared(APIRouter(prefix="/p", tags=[oip_v2.TAG]))  # errors as {"error": ...}

    assert hot_routes(app) == {
        ("POST", "/p/echo/{owner}"): HotRoute(echo, Scope.READ, oip_v2.TAG),
        ("POST", "/p/write"): HotRoute(echo, Scope.PREDICT, oip_v2.TAG, anonymous=True),
    }
    # FastAPI's own route: the same handler, behind the same guard, in the same dialect.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        allowed = await http.post("/p/echo/acme", content=b"x", headers={"X-API-Key": "good"})
        too_weak = await http.post("/p/write", content=b"x", headers={"X-API-Key": "good"})
    assert allowed.json() == {"body": "x", "prefer": []}
    assert too_weak.status_code == 403
    assert too_weak.json() == {
        "error": "this API key's scope is 'read'; POST /p/write needs a key with scope 'predict'"
    }
    operation = app.openapi()["paths"]["/p/echo/{owner}"]["post"]
    assert [p["name"] for p in operation["parameters"]] == ["owner"]


def test_a_route_on_a_router_the_app_does_not_include_is_not_hot() -> None:
    app = declared(APIRouter())
    hot_route(APIRouter(), "POST", "/elsewhere", echo, scope=Scope.READ)

    assert set(hot_routes(app)) == {("POST", "/echo/{owner}"), ("POST", "/write")}


def test_middleware_on_the_app_is_refused_since_the_lane_would_skip_it() -> None:
    app = declared(APIRouter())
    app.add_middleware(GZipMiddleware)

    with pytest.raises(RuntimeError, match=r"middleware on the FastAPI app \(GZipMiddleware\)"):
        hot_routes(app)


async def _guard() -> None:
    pass


@pytest.mark.parametrize(
    ("router", "include"),
    [
        (APIRouter(dependencies=[Depends(_guard)]), {}),
        (APIRouter(), {"dependencies": [Depends(_guard)]}),
    ],
    ids=["on the router", "on the include"],
)
def test_dependencies_the_lane_would_skip_are_refused(
    router: APIRouter, include: dict[str, Any]
) -> None:
    app = declared(router, **include)

    with pytest.raises(RuntimeError, match=r"POST /echo/\{owner\} has dependencies"):
        hot_routes(app)
