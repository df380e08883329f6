"""/openapi.json describes each model's input (a schema per version, an example body per model on
POST /v1/predictions) as the catalog stands when it is asked: a version added or removed while
serving is in the next document."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _app import FIXTURES, POLL_INTERVAL_S, NativeApi, serving
from _readiness import READY_TIMEOUT_S

from foretell.config import Settings

pytestmark = pytest.mark.anyio


def put(repo: Path, ref: str, fixture: str) -> None:
    """A copy of a fixture model's version 1 as `owner/name/N`: the test may remove it."""
    shutil.copytree(
        FIXTURES / fixture / "1", repo / ref, ignore=shutil.ignore_patterns("__pycache__")
    )


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NativeApi]:
    root = tmp_path_factory.mktemp("openapi-models")
    repo = root / "repo"
    put(repo, "acme/typed/1", "typed-inputs")
    put(repo, "acme/open/1", "echo-public")
    put(repo, "acme/broken/1", "raises-in-setup")
    settings = Settings(repository=repo, data_dir=root / "data", watch_repository=False)
    async with serving(settings) as api:
        yield api


async def document(http: httpx.AsyncClient, **kwargs: Any) -> dict[str, Any]:
    response = await http.get("/openapi.json", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    found: dict[str, Any] = response.json()
    return found


async def version_ready(api: NativeApi, path: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until the version has loaded (a version added while serving keeps /health/ready 200)."""
    deadline = time.monotonic() + timeout_s
    while (status := (await api.http.get(f"/v1/models/{path}")).json()["status"]) != "ready":
        assert status in {"building", "deploying"}, status
        assert time.monotonic() < deadline, f"{path} still {status} after {timeout_s:g} s"
        await asyncio.sleep(POLL_INTERVAL_S)


async def version_gone(api: NativeApi, path: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until the version removed has drained and left the catalog."""
    deadline = time.monotonic() + timeout_s
    while (await api.http.get(f"/v1/models/{path}")).status_code != 404:
        assert time.monotonic() < deadline, f"{path} still served after {timeout_s:g} s"
        await asyncio.sleep(POLL_INTERVAL_S)


def examples(spec: dict[str, Any]) -> dict[str, Any]:
    body = spec["paths"]["/v1/predictions"]["post"]["requestBody"]
    found: dict[str, Any] = body["content"]["application/json"].get("examples", {})
    return found


async def test_each_version_input_is_a_component_schema(api: NativeApi) -> None:
    schemas = (await document(api.http))["components"]["schemas"]

    typed = schemas["acme.typed.v1.input"]
    assert typed["title"] == "acme/typed:1 input"
    assert typed["required"] == ["name"]
    assert typed["properties"]["count"]["maximum"] == 10
    assert typed["properties"]["color"]["enum"] == ["red", "green", "blue"]
    assert "acme.open.v1.input" in schemas
    # A version that never loaded has no known input: nothing to describe.
    assert not [name for name in schemas if name.startswith("acme.broken.")]


async def test_each_model_has_an_example_body_that_its_version_accepts(api: NativeApi) -> None:
    found = examples(await document(api.http))

    assert set(found) == {"acme/typed", "acme/open"}
    typed = found["acme/typed"]
    assert typed["summary"].startswith("acme/typed (version 1): One input of each kind")
    # Defaults as the schema gives them, the required name within its length limits.
    assert typed["value"] == {
        "model": "acme/typed",
        "input": {
            "name": "text",
            "count": 5,
            "ratio": 0.5,
            "color": "red",
            "level": 2,
            "loud": False,
            "weights": [1.0, 2.0],
        },
    }
    for name, example in found.items():
        response = await api.http.post(
            "/v1/predictions",
            json=example["value"],
            headers={"Validate-Input": "true", "Prefer": "wait=30"},
        )
        assert response.status_code == 201, (name, response.text)
        assert response.json()["status"] == "succeeded", (name, response.text)


async def test_without_a_key_it_shows_the_public_models_only(api: NativeApi) -> None:
    async with httpx.AsyncClient(
        transport=api.http._transport, base_url="http://test"
    ) as anonymous:
        spec = await document(anonymous)

    assert set(examples(spec)) == {"acme/open"}
    assert not [name for name in spec["components"]["schemas"] if name.startswith("acme.typed")]


async def test_a_version_added_or_removed_while_serving_is_in_the_next_document(
    api: NativeApi, tmp_path: Path
) -> None:
    repo = api.app.state.settings.repository
    before = await document(api.http)
    assert "acme.typed.v2.input" not in before["components"]["schemas"]
    again = await api.http.get("/openapi.json")
    assert again.content == (await api.http.get("/openapi.json")).content  # kept, not rebuilt

    put(repo, "acme/typed/2", "echo")
    try:
        rescan = await api.http.post("/v1/repository/rescan")
        assert rescan.json()["added"] == ["acme/typed:2"], rescan.text
        await version_ready(api, "acme/typed/versions/2")

        added = await document(api.http)
        assert added["components"]["schemas"]["acme.typed.v2.input"]["required"] == ["text"]
        example = examples(added)["acme/typed"]
        assert example["summary"].startswith("acme/typed (version 2)")
        assert example["value"]["input"] == {"text": "text", "n": 1}
    finally:
        shutil.rmtree(repo / "acme/typed/2")
        rescan = await api.http.post("/v1/repository/rescan")
        assert rescan.json()["removed"] == ["acme/typed:2"], rescan.text
        await version_gone(api, "acme/typed/versions/2")

    removed = await document(api.http)
    assert "acme.typed.v2.input" not in removed["components"]["schemas"]
    assert examples(removed)["acme/typed"]["value"]["input"]["name"] == "text"
