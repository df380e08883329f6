"""API keys on every route: no key 401, too weak a key 403, another owner's resource 404, the
right key succeeds — over a table generated from the app's own routes, so a new route cannot
slip through. Then owners, revocation, expiry, rate limits and the accepted header forms."""

from __future__ import annotations

import asyncio
import io
import tarfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _app import FIXTURES, WEBHOOK_SETTINGS, NativeApi, fixture_repository, serving
from _receiver import Receiver

from foretell.api.app import create_app
from foretell.auth import KeyManager
from foretell.config import Settings
from foretell.domain.access import Scope

pytestmark = pytest.mark.anyio

# Routes anyone may call: probes, metrics (open by default) and the API's own description.
OPEN = {
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/health"),  # GPUX's
    ("GET", "/v2/health/live"),  # Open Inference Protocol's
    ("GET", "/v2/health/ready"),
}


def _openapi() -> dict[str, Any]:
    app = create_app(Settings(repository=Path("."), data_dir=Path("/nonexistent")))
    document: dict[str, Any] = app.openapi()
    return document


def openapi_routes() -> list[tuple[str, str]]:
    """(method, path) of every operation in the app's OpenAPI document but the open ones."""
    return sorted(
        (method.upper(), path)
        for path, operations in _openapi()["paths"].items()
        for method in operations
        if (method.upper(), path) not in OPEN
    )


ROUTES = openapi_routes()
EVENTS_WITHIN_S = 60.0  # a prediction's webhook events are stored: generous, for a busy machine


@dataclass
class World:
    """Two owners' keys and resources on one server."""

    api: NativeApi
    keys: dict[str, str]  # "acme:read" → key, "acme:predict", "acme:deploy", …, "admin"
    receiver: Receiver

    async def as_(self, who: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        headers |= kwargs.pop("headers", {})
        http = httpx.AsyncClient(transport=self.api.http._transport, base_url="http://test")
        async with http:
            return await http.request(method, path, headers=headers, **kwargs)

    async def prediction(self, who: str, model: str, input: dict[str, Any], **body: Any) -> str:
        response = await self.as_(
            who, "POST", "/v1/predictions", json={"model": model, "input": input, **body}
        )
        assert response.status_code == 201, response.text
        prediction_id: str = response.json()["id"]
        return prediction_id


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    base = tmp_path_factory.mktemp("auth")
    repo = fixture_repository(
        base / "repository",
        {
            "acme/echo": "echo",
            "acme/spare": "echo",  # the one a test unloads
            "acme/sleeps": "sleeps",
            "globex/echo": "echo",
            "globex/shared": "echo-public",
            "acme/forecast": "quick-forecast",
            "globex/forecast": "quick-forecast",
        },
    )
    settings = Settings(
        repository=repo, data_dir=base / "data", default_model="acme/echo", **WEBHOOK_SETTINGS
    )
    with Receiver().running() as receiver:
        async with serving(settings) as api:
            keys: KeyManager = api.app.state.keys
            made = {
                f"{owner}:{scope.value}": (await keys.create(owner=owner, scope=scope)).key
                for owner in ("acme", "globex")
                for scope in (Scope.READ, Scope.PREDICT, Scope.DEPLOY)
            }
            made["admin"] = (await keys.create(owner="root", scope=Scope.ADMIN)).key
            world = World(api, made, receiver)
            yield world
            # What _cancel started and no test canceled: nothing left running at shutdown.
            for status in ("pending", "processing"):
                for p in await api.list_all(model="acme/sleeps", status=status):
                    await world.as_("admin", "POST", f"/v1/predictions/{p['id']}/cancel")


# For each protected route: how to call it as acme, on acme's resource (`mine=True`) or on
# globex's (`mine=False`), and which answer means it worked. A route missing here fails
# test_every_protected_route_is_in_the_table.
Call = Callable[[World, bool], Awaitable[tuple[str, dict[str, Any]]]]


async def _acme_or_globex_prediction(w: World, mine: bool, **body: Any) -> str:
    who = "acme:predict" if mine else "globex:predict"
    return await w.prediction(who, f"{who.split(':')[0]}/echo", {"text": "x"}, **body)


async def _get_prediction(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    return f"/v1/predictions/{await _acme_or_globex_prediction(w, mine)}", {}


async def _stream(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    # Echo ends at once: its stream replays the record and ends, whoever may read it.
    return f"/v1/predictions/{await _acme_or_globex_prediction(w, mine)}/stream", {}


async def _cancel(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    if mine:  # unfinished when canceled, however slow the machine; `world` cancels leftovers
        prediction_id = await w.prediction("acme:predict", "acme/sleeps", {"seconds": 30})
    else:
        prediction_id = await w.prediction("globex:predict", "globex/echo", {"text": "x"})
    return f"/v1/predictions/{prediction_id}/cancel", {}


async def _webhooks(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    prediction_id = await _acme_or_globex_prediction(w, mine, webhook=w.receiver.url())
    return f"/v1/predictions/{prediction_id}/webhooks", {}


async def _redeliver(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    prediction_id = await _acme_or_globex_prediction(w, mine, webhook=w.receiver.url())
    deadline = time.monotonic() + EVENTS_WITHIN_S
    while True:  # until its events (start, completed) exist
        log = await w.as_("admin", "GET", f"/v1/predictions/{prediction_id}/webhooks")
        if len(log.json()["events"]) == 2:
            break
        assert time.monotonic() < deadline, f"no events within {EVENTS_WITHIN_S:g} s: {log.text}"
        await asyncio.sleep(0.02)
    return f"/v1/predictions/{prediction_id}/webhooks/redeliver", {}


async def _model(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    return f"/v1/models/{'acme' if mine else 'globex'}/echo", {}


async def _version(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    return f"/v1/models/{'acme' if mine else 'globex'}/echo/versions/1", {}


async def _gpux(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    return f"/models/{'acme' if mine else 'globex'}/echo/predict", {"json": {"text": "x"}}


async def _slashml(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    model = "acme%2Fecho" if mine else "globex%2Fecho"
    path = f"/model-deployment/v1/models/{model}/predict"
    return path, {"json": {"model_input": {"text": "x"}}}


async def _spice(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    # "forecast" is the name of both owners' models: unique among what acme's keys see.
    return "/v1/models/forecast/predict", {}


async def _spice_owned(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    return f"/v1/models/{'acme' if mine else 'globex'}/forecast/predict", {}


async def _environments(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    return f"/v1/models/{'acme' if mine else 'globex'}/echo/environments", {}


async def _create(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    model = "acme/echo" if mine else "globex/echo"
    return "/v1/predictions", {"json": {"model": model, "input": {"text": "x"}}}


async def _revoke(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    made = await w.as_("admin", "POST", "/v1/keys", json={"owner": "acme", "scope": "read"})
    return f"/v1/keys/{made.json()['id']}", {}


async def _file(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    who = "acme:predict" if mine else "globex:predict"
    made = await w.as_(who, "POST", "/v1/files?filename=a.txt", content=b"hello")
    assert made.status_code == 201, made.text
    return f"/v1/files/{made.json()['id']}", {}


def _v2_model(suffix: str, **kwargs: Any) -> Call:
    """An OIP v2 route on acme's echo model (or globex's, which acme may not see)."""

    async def call(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
        return f"/v2/models/{'acme' if mine else 'globex'}/echo{suffix}", kwargs

    return call


def _triton(acme_model: str, action: str) -> Call:
    """Triton's load or unload of an acme model (or of globex's echo, which acme may not see)."""

    async def call(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
        model = f"acme/{acme_model}" if mine else "globex/echo"
        return f"/v2/repository/models/{model}/{action}", {}

    return call


async def _push(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    """echo as a new model's first version (never into a model folder linked to the fixtures)."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(FIXTURES / "echo" / "1", arcname=".", filter=_no_cache)
    headers = {"Content-Type": "application/gzip"}
    return "/v1/models/acme/pushed/versions", {"content": archive.getvalue(), "headers": headers}


def _no_cache(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in member.name else member


async def _deployment(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    path = f"/v1/models/{'acme' if mine else 'globex'}/echo/versions/1/deployment"
    return path, {"json": {"state": "started"}}


V2_INFER = {
    "json": {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}
}
V2_TEXT = {"json": {"text_input": "x"}}  # the generate extension's: echo's `text`
BASETEN_BODY = {"json": {"text": "x"}}


async def _baseten_deployment(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    owner = "acme" if mine else "globex"
    model = (await w.as_("admin", "GET", f"/v1/models/{owner}/echo")).json()
    deployment_id = model["versions"][0]["deployment"]["id"]
    return f"/model/{owner}-echo/deployment/{deployment_id}/predict", BASETEN_BODY


def _baseten(suffix: str) -> Call:
    async def call(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
        return f"/model/{'acme' if mine else 'globex'}-echo{suffix}", BASETEN_BODY

    return call


def _baseten_by_host(path: str) -> Call:
    async def call(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
        host = f"model-{'acme' if mine else 'globex'}-echo.example.com"
        return path, {**BASETEN_BODY, "headers": {"host": host}}

    return call


async def _baseten_deployment_by_host(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
    path, kwargs = await _baseten_deployment(w, mine)
    owner = "acme" if mine else "globex"
    host = {"host": f"model-{owner}-echo.example.com"}
    return path.removeprefix(f"/model/{owner}-echo"), {**kwargs, "headers": host}


def plain(path: str, **kwargs: Any) -> Call:
    async def call(w: World, mine: bool) -> tuple[str, dict[str, Any]]:
        return path, kwargs

    return call


R, P, D, A = Scope.READ, Scope.PREDICT, Scope.DEPLOY, Scope.ADMIN
NEW_KEY = {"json": {"owner": "acme", "scope": "read"}}
# (method, path) → (scope, how to call it, the status that means success, whether another
# owner's resource can be named, and must then be 404)
TABLE: dict[tuple[str, str], tuple[Scope, Call, int, bool]] = {
    ("POST", "/v1/predictions"): (P, _create, 201, True),
    ("GET", "/v1/predictions"): (R, plain("/v1/predictions"), 200, False),
    ("GET", "/v1/predictions/{prediction_id}"): (R, _get_prediction, 200, True),
    ("GET", "/v1/predictions/{prediction_id}/stream"): (R, _stream, 200, True),
    ("POST", "/v1/predictions/{prediction_id}/cancel"): (P, _cancel, 200, True),
    ("GET", "/v1/predictions/{prediction_id}/webhooks"): (R, _webhooks, 200, True),
    ("POST", "/v1/predictions/{prediction_id}/webhooks/redeliver"): (P, _redeliver, 202, True),
    ("GET", "/v1/models"): (R, plain("/v1/models"), 200, False),
    ("GET", "/v1/models/{owner}/{name}"): (R, _model, 200, True),
    ("GET", "/v1/models/{owner}/{name}/versions/{version_number}"): (R, _version, 200, True),
    ("POST", "/v1/keys"): (A, plain("/v1/keys", **NEW_KEY), 201, False),
    ("GET", "/v1/keys"): (A, plain("/v1/keys"), 200, False),
    ("DELETE", "/v1/keys/{key_id}"): (A, _revoke, 200, False),
    # stored files
    ("POST", "/v1/files"): (P, plain("/v1/files?filename=a.txt", content=b"hello"), 201, False),
    ("GET", "/v1/files"): (R, plain("/v1/files"), 200, False),
    ("GET", "/v1/files/{file_id}"): (R, _file, 200, True),
    ("DELETE", "/v1/files/{file_id}"): (P, _file, 204, True),
    # GPUX (seed 003); acme/echo is the server's default model
    ("POST", "/predict"): (P, plain("/predict", json={"text": "x"}), 200, False),
    ("POST", "/models/{owner}/{name}/predict"): (P, _gpux, 200, True),
    ("GET", "/info"): (R, plain("/info"), 200, False),
    # Open Inference Protocol v2
    ("GET", "/v2"): (R, plain("/v2"), 200, False),
    ("GET", "/v2/models/{owner}/{name}"): (R, _v2_model(""), 200, True),
    ("GET", "/v2/models/{owner}/{name}/versions/{version}"): (
        R,
        _v2_model("/versions/1"),
        200,
        True,
    ),
    ("GET", "/v2/models/{owner}/{name}/ready"): (R, _v2_model("/ready"), 200, True),
    ("GET", "/v2/models/{owner}/{name}/versions/{version}/ready"): (
        R,
        _v2_model("/versions/1/ready"),
        200,
        True,
    ),
    ("GET", "/v2/models/{owner}/{name}/config"): (R, _v2_model("/config"), 200, True),
    ("GET", "/v2/models/{owner}/{name}/versions/{version}/config"): (
        R,
        _v2_model("/versions/1/config"),
        200,
        True,
    ),
    ("GET", "/v2/models/stats"): (R, plain("/v2/models/stats"), 200, False),
    ("GET", "/v2/models/{owner}/{name}/stats"): (R, _v2_model("/stats"), 200, True),
    ("GET", "/v2/models/{owner}/{name}/versions/{version}/stats"): (
        R,
        _v2_model("/versions/1/stats"),
        200,
        True,
    ),
    ("POST", "/v2/repository/index"): (R, plain("/v2/repository/index"), 200, False),
    ("POST", "/v2/repository/models/{owner}/{name}/load"): (
        D,
        _triton("echo", "load"),
        200,
        True,
    ),
    ("POST", "/v2/repository/models/{owner}/{name}/unload"): (
        D,
        _triton("spare", "unload"),
        200,
        True,
    ),
    ("POST", "/v2/models/{owner}/{name}/infer"): (P, _v2_model("/infer", **V2_INFER), 200, True),
    ("POST", "/v2/models/{owner}/{name}/versions/{version}/infer"): (
        P,
        _v2_model("/versions/1/infer", **V2_INFER),
        200,
        True,
    ),
    ("POST", "/v2/models/{owner}/{name}/generate"): (
        P,
        _v2_model("/generate", **V2_TEXT),
        200,
        True,
    ),
    ("POST", "/v2/models/{owner}/{name}/versions/{version}/generate"): (
        P,
        _v2_model("/versions/1/generate", **V2_TEXT),
        200,
        True,
    ),
    ("POST", "/v2/models/{owner}/{name}/generate_stream"): (
        P,
        _v2_model("/generate_stream", **V2_TEXT),
        200,
        True,
    ),
    ("POST", "/v2/models/{owner}/{name}/versions/{version}/generate_stream"): (
        P,
        _v2_model("/versions/1/generate_stream", **V2_TEXT),
        200,
        True,
    ),
    # Baseten (seed 004): by path prefix, and by host
    ("POST", "/model/{model_id}/deployment/{deployment_id}/predict"): (
        P,
        _baseten_deployment,
        200,
        True,
    ),
    ("POST", "/model/{model_id}/production/predict"): (
        P,
        _baseten("/production/predict"),
        200,
        True,
    ),
    ("POST", "/model/{model_id}/development/predict"): (
        P,
        _baseten("/development/predict"),
        200,
        True,
    ),
    ("POST", "/model/{model_id}/environments/{env_name}/predict"): (
        P,
        _baseten("/environments/production/predict"),
        200,
        True,
    ),
    ("POST", "/deployment/{deployment_id}/predict"): (P, _baseten_deployment_by_host, 200, True),
    ("POST", "/production/predict"): (P, _baseten_by_host("/production/predict"), 200, True),
    ("POST", "/development/predict"): (P, _baseten_by_host("/development/predict"), 200, True),
    ("POST", "/environments/{env_name}/predict"): (
        P,
        _baseten_by_host("/environments/production/predict"),
        200,
        True,
    ),
    # management of environments
    ("GET", "/v1/models/{owner}/{name}/environments"): (R, _environments, 200, True),
    ("PUT", "/v1/models/{owner}/{name}/environments/{environment}"): (
        A,
        plain("/v1/models/acme/echo/environments/staging", json={"version_number": 1}),
        200,
        False,
    ),
    # a pushed version, a version's deployment, the repository
    ("POST", "/v1/models/{owner}/{name}/versions"): (D, _push, 202, False),
    ("POST", "/v1/models/{owner}/{name}/versions/{version_number}/deployment"): (
        D,
        _deployment,
        200,
        True,
    ),
    ("POST", "/v1/repository/rescan"): (D, plain("/v1/repository/rescan"), 200, False),
    # Spice (seed 002)
    ("GET", "/v1/models/{name}/predict"): (P, _spice, 200, False),
    ("GET", "/v1/models/{owner}/{name}/predict"): (P, _spice_owned, 200, True),
    ("POST", "/v1/predict"): (
        P,
        plain("/v1/predict", json={"predictions": [{"model_name": "acme/forecast"}]}),
        200,
        False,
    ),
    # SlashML (seed 000)
    ("POST", "/model-deployment/v1/models/{model_id}/predict"): (P, _slashml, 200, True),
}
WEAKER = {Scope.PREDICT: "acme:read", Scope.DEPLOY: "acme:predict", Scope.ADMIN: "acme:deploy"}


def _right_key(scope: Scope) -> str:
    return "admin" if scope is Scope.ADMIN else f"acme:{scope.value}"


def test_every_route_in_the_openapi_document_is_in_the_table_and_marked_secured() -> None:
    assert set(ROUTES) == set(TABLE), "a new route: add it to TABLE with its scope"
    paths = _openapi()["paths"]
    unmarked = [
        (m, p) for m, p in ROUTES if paths[p][m.lower()].get("security") != [{"HTTPBearer": []}]
    ]
    assert unmarked == []


def message(response: httpx.Response) -> str:
    """The error message, whichever dialect's envelope carries it."""
    body = response.json()
    for field in ("detail", "error", "error_message"):  # native, most dialects, Spice
        if field in body:
            said: str = body[field]
            return said
    raise AssertionError(f"no error message in {body}")


def ids(routes: list[tuple[str, str]]) -> list[str]:
    return [f"{m} {p}" for m, p in routes]


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ids(ROUTES))
async def test_no_key_is_401_with_the_accepted_forms(world: World, method: str, path: str) -> None:
    _, call, _, _ = TABLE[(method, path)]
    url, kwargs = await call(world, True)
    response = await world.as_(None, method, url, **kwargs)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == (
        'Bearer realm="foretell", Token realm="foretell", Api-Key realm="foretell"'
    )
    assert "no API key; send one as Authorization: Bearer <key>" in message(response)


GUARDED = [r for r in ROUTES if r in TABLE and TABLE[r][0] in WEAKER]


@pytest.mark.parametrize(("method", "path"), GUARDED, ids=ids(GUARDED))
async def test_a_key_without_the_scope_is_403(world: World, method: str, path: str) -> None:
    scope, call, _, _ = TABLE[(method, path)]
    url, kwargs = await call(world, True)
    response = await world.as_(WEAKER[scope], method, url, **kwargs)
    assert response.status_code == 403, response.text
    assert f"needs a key with scope '{scope.value}'" in message(response)


OWNED = [r for r in ROUTES if r in TABLE and TABLE[r][3]]


@pytest.mark.parametrize(("method", "path"), OWNED, ids=ids(OWNED))
async def test_another_owners_resource_is_404(world: World, method: str, path: str) -> None:
    scope, call, _, _ = TABLE[(method, path)]
    url, kwargs = await call(world, False)
    response = await world.as_(_right_key(scope), method, url, **kwargs)
    assert response.status_code == 404, response.text
    assert "not found" in message(response)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ids(ROUTES))
async def test_the_right_key_succeeds(world: World, method: str, path: str) -> None:
    scope, call, success, _ = TABLE[(method, path)]
    url, kwargs = await call(world, True)
    response = await world.as_(_right_key(scope), method, url, **kwargs)
    assert response.status_code == success, response.text
