"""Liveness, readiness with every deployment's status, and the documentation endpoints."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = (
    "demo/iris",
    "demo/digits",
    "fixtures/echo",
    "fixtures/raises-in-setup",
    "fixtures/broken-manifest",
)


async def test_live_is_200(api) -> None:
    response = await api.http.get("/health/live")

    assert response.status_code == 200, response.text


async def test_ready_lists_every_deployment_with_its_status(api) -> None:
    response = await api.http.get("/health/ready")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    deployments = body["deployments"]
    for ref in ("demo/iris:1", "demo/iris:2", "demo/digits:1", "fixtures/echo:1"):
        assert deployments[ref] == "ready", (ref, deployments)
    for ref in ("fixtures/raises-in-setup:1", "fixtures/broken-manifest:1"):
        assert deployments[ref] == "failed", (ref, deployments)
    assert "deploying" not in deployments.values()


async def test_openapi_documents_the_create_prediction_body(api) -> None:
    response = await api.http.get("/openapi.json")

    assert response.status_code == 200, response.text
    spec = response.json()
    create = spec["paths"]["/v1/predictions"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert {"model", "input", "webhook"} <= body["properties"].keys()
    assert set(body["required"]) == {"model", "input"}
    assert "201" in create["responses"]
    headers = {p["name"].lower() for p in create["parameters"] if p["in"] == "header"}
    assert {"prefer", "validate-input"} <= headers
    assert "get" in spec["paths"]["/v1/predictions"]
    assert {"/v1/predictions/{prediction_id}", "/v1/predictions/{prediction_id}/cancel"} <= set(
        spec["paths"]
    )
    assert "/v1/models/{owner}/{name}/versions/{version_number}" in spec["paths"]


async def test_openapi_refs_all_resolve(api) -> None:
    """A $ref that points nowhere breaks /docs and every client generator."""
    spec = (await api.http.get("/openapi.json")).json()

    dangling = sorted({ref for ref in _refs(spec) if _resolve(spec, ref) is None})

    assert dangling == []


async def test_docs_page_is_served(api) -> None:
    response = await api.http.get("/docs")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        return None
    node: Any = spec
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
