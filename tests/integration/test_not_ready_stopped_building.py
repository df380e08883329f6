"""A version that is stopped (unloaded) or building its environment answers every dialect's "not
ready" form at once, as a deploying one does: 503 + Retry-After natively and in Spice, GPUX,
Baseten and OIP, SlashML's seed 000 400, OIP's model ready 400. Loaded again, it serves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from _app import NativeApi

from foretell.domain import DeploymentStatus, ModelRef
from foretell.domain.access import ANONYMOUS_ADMIN

pytestmark = pytest.mark.anyio

MODELS = ("fixtures/echo",)
ECHO = ModelRef("fixtures", "echo", 1)
SEED_NOT_READY = {
    "error": "some error occured when requesting job status",
    "full_message": [
        "{'error': ErrorDetail(string='model not ready', code='permission_denied'), "
        "'reasons': [ErrorDetail(string='model not ready', code='permission_denied'), "
        "ErrorDetail(string='model is still being built or deployed', "
        "code='permission_denied')]}"
    ],
}


def not_ready(status: str) -> str:
    return f"model 'fixtures/echo:1' is not ready: deployment is {status}"


@pytest.fixture
async def stopped(api: NativeApi) -> AsyncIterator[NativeApi]:
    """The module's app with fixtures/echo unloaded; loaded again afterwards."""
    lifecycle = api.app.state.service.lifecycle
    view = await lifecycle.unload(ECHO, ANONYMOUS_ADMIN)
    assert view.status is DeploymentStatus.STOPPED
    yield api
    assert (await lifecycle.load(ECHO, ANONYMOUS_ADMIN)).ready


@pytest.fixture
def building(stopped: NativeApi) -> Iterator[NativeApi]:
    """As if echo were building its environment: what every dialect reads is its view."""
    deployment = stopped.app.state.service._deployments.get(*ECHO.slug.split("/"), 1)
    deployment.status = DeploymentStatus.BUILDING
    deployment.on_change()
    yield stopped
    deployment.status = DeploymentStatus.STOPPED
    deployment.on_change()


@pytest.fixture(params=["stopped", "building"])
def unready(request: pytest.FixtureRequest) -> tuple[NativeApi, str]:
    api: NativeApi = request.getfixturevalue(request.param)
    return api, request.param


def token(api: NativeApi) -> str:
    return str(api.http.headers["Authorization"]).removeprefix("Bearer ")


def assert_503(response: httpx.Response, body: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert response.json() == body


async def test_slashml_answers_the_seeds_400(unready: tuple[NativeApi, str]) -> None:
    api, _ = unready
    response = await api.http.post(
        "/model-deployment/v1/models/fixtures/echo/predict",
        headers={"Authorization": f"Token {token(api)}"},
        json={"model_input": {"text": "hi"}},
    )
    assert response.status_code == 400, response.text
    assert response.json() == SEED_NOT_READY


async def test_gpux_answers_503(unready: tuple[NativeApi, str]) -> None:
    api, status = unready
    response = await api.http.post("/models/fixtures/echo/predict", json={"text": "hi"})
    assert_503(response, {"detail": not_ready(status)})


async def test_baseten_answers_503(unready: tuple[NativeApi, str]) -> None:
    api, status = unready
    response = await api.http.post(
        "/model/fixtures-echo/production/predict",
        headers={"Authorization": f"Api-Key {token(api)}"},
        json={"text": "hi"},
    )
    assert_503(response, {"error": not_ready(status)})


async def test_spice_answers_503_in_its_shape(unready: tuple[NativeApi, str]) -> None:
    api, status = unready
    response = await api.http.get("/v1/models/fixtures/echo/predict", params={"text": "hi"})
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    body = response.json()
    assert (body["status"], body["error_message"]) == ("InternalError", not_ready(status))


async def test_oip_infer_answers_503_and_the_model_is_not_ready(
    unready: tuple[NativeApi, str],
) -> None:
    api, status = unready
    tensor = {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hi"]}
    response = await api.http.post("/v2/models/fixtures/echo/infer", json={"inputs": [tensor]})
    ready = await api.http.get("/v2/models/fixtures/echo/ready")
    assert_503(response, {"error": not_ready(status)})
    assert ready.status_code == 400, ready.text


async def test_native_answers_503_and_records_nothing(stopped: NativeApi) -> None:
    before = (await stopped.http.get("/v1/predictions")).json()["results"]
    for prefer in (None, "wait=5"):
        response = await stopped.post("fixtures/echo", {"text": "hi"}, prefer=prefer)
        assert_503(response, {"detail": not_ready("stopped")})
    assert (await stopped.http.get("/v1/predictions")).json()["results"] == before


async def test_the_record_shows_it_stopped_and_loaded_again_it_serves(api: NativeApi) -> None:
    lifecycle = api.app.state.service.lifecycle
    first = await lifecycle.unload(ECHO, ANONYMOUS_ADMIN)
    again = await lifecycle.load(ECHO, ANONYMOUS_ADMIN)

    assert first.stopped_at is not None
    assert first.ready_at is not None
    assert first.ready_at < first.stopped_at == first.updated_at
    assert again.ready
    assert again.ready_at is not None
    assert again.ready_at > first.stopped_at
    assert again.created_at == first.created_at
    record = await api.create("fixtures/echo", {"text": "again"}, prefer="wait=30")
    assert (record["status"], record["output"]) == ("succeeded", {"text": "again", "n": 1}), record
