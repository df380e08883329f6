"""Anonymous access (`anonymous_public`, `foretell serve --anonymous-public`, on under `make run`):
a request that offers no key may run a public model through the dialects' synchronous prediction
routes, and read GPUX's /info (seed 003's clients read it with no key), and nothing else: not a
private model, not the native API (records), keys or listings. A request that offers a key is
checked as ever. Off by default: then every route wants a key."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _app import FIXTURES, NativeApi, fixture_repository, serving
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from foretell.api.app import create_app
from foretell.api.auth import Authorized
from foretell.api.hotpath import hot_routes
from foretell.config import Settings
from foretell.domain.access import Scope

pytestmark = pytest.mark.anyio

# The routes a request without a key may take, with anonymous access on: each answers and
# keeps nothing its caller could read back (GPUX and Baseten keep no record; SlashML, Spice and
# OIP v2 keep one that only an admin's key can read).
ANONYMOUS_ROUTES = {
    ("POST", "/predict"),
    ("POST", "/models/{owner}/{name}/predict"),
    ("POST", "/v2/models/{owner}/{name}/infer"),
    ("POST", "/v2/models/{owner}/{name}/versions/{version}/infer"),
    # OIP's generate extension: a prediction route of the same dialect (its stream's record,
    # like infer's, only an admin's key can read back).
    ("POST", "/v2/models/{owner}/{name}/generate"),
    ("POST", "/v2/models/{owner}/{name}/versions/{version}/generate"),
    ("POST", "/v2/models/{owner}/{name}/generate_stream"),
    ("POST", "/v2/models/{owner}/{name}/versions/{version}/generate_stream"),
    ("POST", "/model-deployment/v1/models/{model_id}/predict"),
    ("GET", "/v1/models/{name}/predict"),
    ("GET", "/v1/models/{owner}/{name}/predict"),
    ("POST", "/v1/predict"),
    ("POST", "/deployment/{deployment_id}/predict"),
    ("POST", "/production/predict"),
    ("POST", "/development/predict"),
    ("POST", "/environments/{env_name}/predict"),
    ("POST", "/model/{model_id}/deployment/{deployment_id}/predict"),
    ("POST", "/model/{model_id}/production/predict"),
    ("POST", "/model/{model_id}/development/predict"),
    ("POST", "/model/{model_id}/environments/{env_name}/predict"),
    ("GET", "/info"),  # GPUX: what the default models take and give; reads, runs nothing
}
READ_ONLY = {("GET", "/info")}


def api_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute with its path as served: its router's own prefix is in its path_format,
    the prefixes of the routers including that router (OIP's generate, inside /v2) are not."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path_format, route
        included = getattr(route, "original_router", None)  # FastAPI includes routers lazily
        if included is not None:
            context = route.include_context  # type: ignore[attr-defined]
            yield from api_routes(included.routes, prefix + context.prefix)


def guards() -> dict[tuple[str, str], Authorized]:
    """(method, path) of every route that asks for a key → its `Authorized` dependency."""
    app = create_app(Settings(repository=Path("."), data_dir=Path("/nonexistent")))
    found = {}
    for path, route in api_routes(app.routes):
        for dependency in route.dependant.dependencies:
            if isinstance(dependency.call, Authorized):
                found |= {(m, path): dependency.call for m in route.methods}
    return found


GUARDS = guards()
KEYED = sorted(set(GUARDS) - ANONYMOUS_ROUTES)


def test_only_the_dialects_prediction_routes_take_anonymous_callers() -> None:
    anonymous = {route for route, guard in GUARDS.items() if guard.anonymous}

    assert anonymous == ANONYMOUS_ROUTES
    assert {route: GUARDS[route].scope for route in anonymous} == {
        route: Scope.READ if route in READ_ONLY else Scope.PREDICT for route in ANONYMOUS_ROUTES
    }


def test_the_fast_lane_lets_in_whom_its_fastapi_twin_lets_in() -> None:
    hot = hot_routes(create_app(Settings(repository=Path("."), data_dir=Path("/nonexistent"))))

    assert {key: route.anonymous for key, route in hot.items()} == {
        key: GUARDS[key].anonymous for key in hot
    }


@dataclass
class World:
    api: NativeApi
    deployments: dict[str, str]  # "owner/name" → its version 1's deployment id

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A request without a key, unless `headers` gives one."""
        async with httpx.AsyncClient(
            transport=self.api.http._transport, base_url="http://test"
        ) as http:
            return await http.request(method, path, headers=headers or {}, **kwargs)


def publish(repo: Path, ref: str, fixture: str) -> None:
    """A public copy of a fixture model: its code, with `visibility: public` in its manifest."""
    version = repo / ref / "1"
    version.mkdir(parents=True)
    source = FIXTURES / fixture / "1"
    shutil.copy(source / "predict.py", version)  # a link would lead out of the folder: refused
    manifest = (source / "foretell.yaml").read_text()
    (version / "foretell.yaml").write_text(manifest + "visibility: public\n")


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    base = tmp_path_factory.mktemp("anonymous")
    repo = fixture_repository(
        base / "repository",
        {"acme/echo": "echo", "globex/shared": "echo-public", "acme/forecast": "quick-forecast"},
    )
    publish(repo, "globex/forecast", "quick-forecast")
    settings = Settings(
        repository=repo,
        data_dir=base / "data",
        default_model="globex/shared",
        anonymous_public=True,
    )
    async with serving(settings) as api:
        models = (await api.http.get("/v1/models")).json()["results"]
        deployments = {
            f"{m['owner']}/{m['name']}": m["versions"][0]["deployment"]["id"] for m in models
        }
        yield World(api, deployments)


ECHO = {"json": {"text": "x"}}
INFER = {"json": {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}}


def calls(world: World, owner: str, name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every anonymous route, on model `owner/name` (an echo model, or a forecast for Spice)."""
    ref, model_id = f"{owner}/{name}", f"{owner}-{name}"
    deployment = world.deployments[ref]
    host = {"headers": {"host": f"model-{model_id}.example.com"}}
    return [
        ("POST", f"/models/{ref}/predict", ECHO),
        ("POST", f"/v2/models/{ref}/infer", INFER),
        ("POST", f"/v2/models/{ref}/versions/1/infer", INFER),
        (
            "POST",
            f"/model-deployment/v1/models/{owner}%2F{name}/predict",
            {"json": {"model_input": {"text": "x"}}},
        ),
        (
            "POST",
            f"/model-deployment/v1/models/{deployment}/predict",
            {"json": {"model_input": {"text": "x"}}},
        ),
        ("POST", f"/deployment/{deployment}/predict", {**ECHO, **host}),
        ("POST", "/production/predict", {**ECHO, **host}),
        ("POST", "/development/predict", {**ECHO, **host}),
        ("POST", "/environments/production/predict", {**ECHO, **host}),
        ("POST", f"/model/{model_id}/deployment/{deployment}/predict", ECHO),
        ("POST", f"/model/{model_id}/production/predict", ECHO),
        ("POST", f"/model/{model_id}/development/predict", ECHO),
        ("POST", f"/model/{model_id}/environments/production/predict", ECHO),
    ]


async def test_without_a_key_a_public_model_answers_on_every_anonymous_route(
    world: World,
) -> None:
    default = await world.call("POST", "/predict", **ECHO)  # GPUX: the default model, public
    spice = [
        await world.call("GET", "/v1/models/globex/forecast/predict"),
        await world.call("GET", "/v1/models/forecast/predict"),  # the only one it may see
        await world.call(
            "POST", "/v1/predict", json={"predictions": [{"model_name": "globex/forecast"}]}
        ),
    ]
    answered = [
        (m, p, await world.call(m, p, **kw)) for m, p, kw in calls(world, "globex", "shared")
    ]

    assert default.status_code == 200, default.text
    assert default.json() == {"text": "x", "n": 1}
    for response in spice:
        assert response.status_code == 200, response.text
    assert spice[2].json()["predictions"][0]["status"] == "Success"
    for method, path, response in answered:
        assert response.status_code == 200, (method, path, response.text)


async def test_without_a_key_a_private_model_is_not_found_on_every_anonymous_route(
    world: World,
) -> None:
    spice = [
        await world.call("GET", "/v1/models/acme/forecast/predict"),
        await world.call(
            "POST", "/v1/predict", json={"predictions": [{"model_name": "acme/forecast"}]}
        ),
    ]
    refused = [(m, p, await world.call(m, p, **kw)) for m, p, kw in calls(world, "acme", "echo")]

    assert spice[0].status_code == 404, spice[0].text
    assert spice[1].json()["predictions"][0]["error_message"] == "model 'acme/forecast' not found"
    for method, path, response in refused:
        assert response.status_code == 404, (method, path, response.text)
        assert "not found" in response.text, (method, path, response.text)


async def test_without_a_key_gpux_describes_its_public_default_model(world: World) -> None:
    info = await world.call("GET", "/info")
    health = await world.call("GET", "/health")

    assert info.status_code == 200, info.text
    assert info.json()["name"] == "globex/shared"
    assert [i["name"] for i in info.json()["inputs"]] == ["text", "n"]
    assert health.status_code == 200, health.text
    assert health.json() == {"status": "healthy", "model": "globex/shared:1"}


async def test_without_a_key_gpux_info_on_a_private_default_model_is_not_found(
    tmp_path: Path,
) -> None:
    repo = fixture_repository(tmp_path / "repository", {"acme/echo": "echo"})
    settings = Settings(
        repository=repo,
        data_dir=tmp_path / "data",
        default_model="acme/echo",
        anonymous_public=True,
    )
    async with serving(settings) as api:
        world = World(api, {})
        keyless = await world.call("GET", "/info")
        keyed = await api.http.get("/info")

    assert keyless.status_code == 404, keyless.text
    assert keyless.json() == {"detail": "model 'acme/echo' not found"}
    assert keyed.status_code == 200, keyed.text


@pytest.mark.parametrize(("method", "path"), KEYED, ids=[f"{m} {p}" for m, p in KEYED])
async def test_without_a_key_every_other_route_is_still_401(
    world: World, method: str, path: str
) -> None:
    # The key is asked for before anything else, so placeholders in the path will do.
    url = re.sub(r"{(\w+)}", lambda m: "1" if "version" in m[1] else "globex", path)
    body = {"json": {}} if method in ("POST", "PUT") else {}

    response = await world.call(method, url, **body)

    assert response.status_code == 401, response.text
    if method == "HEAD":  # an answer without a body: its head says it
        assert "Bearer" in response.headers["www-authenticate"]
        return
    assert "no API key; send one as Authorization: Bearer <key>" in response.text


async def test_a_key_offered_is_checked_even_where_none_is_needed(world: World) -> None:
    unknown = {"Authorization": "Bearer ft_0000_nope"}
    reader = (await world.api.app.state.keys.create(owner="globex", scope=Scope.READ)).key

    bad = await world.call("POST", "/predict", unknown, **ECHO)
    weak = await world.call("POST", "/predict", {"Authorization": f"Bearer {reader}"}, **ECHO)

    assert bad.status_code == 401, bad.text
    assert bad.json() == {"detail": "invalid API key"}
    assert weak.status_code == 403, weak.text


async def test_what_an_anonymous_caller_ran_is_no_keys_to_read(world: World) -> None:
    response = await world.call("POST", "/v2/models/globex/shared/infer", **INFER)
    prediction_id = response.json()["parameters"]["prediction_id"]
    globex = (await world.api.app.state.keys.create(owner="globex", scope=Scope.READ)).key

    as_globex = await world.call(
        "GET", f"/v1/predictions/{prediction_id}", {"Authorization": f"Bearer {globex}"}
    )
    as_admin = await world.api.http.get(f"/v1/predictions/{prediction_id}")

    assert as_globex.status_code == 404, as_globex.text
    assert as_admin.status_code == 200, as_admin.text


async def test_off_by_default_a_public_model_still_needs_a_key(tmp_path: Path) -> None:
    repo = fixture_repository(tmp_path / "repository", {"globex/shared": "echo-public"})
    settings = Settings(repository=repo, data_dir=tmp_path / "data")
    assert settings.anonymous_public is False
    async with serving(settings) as api:
        world = World(api, {})
        responses = [
            await world.call("POST", "/predict", **ECHO),
            await world.call("POST", "/v2/models/globex/shared/infer", **INFER),
            await world.call("POST", "/model/globex-shared/production/predict", **ECHO),
            await world.call("GET", "/info"),
        ]

    for response in responses:
        assert response.status_code == 401, response.text
