"""GET /v1/models, /v1/models/{owner}/{name} and /versions/{n}: versions, schemas, status."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = (
    "demo/iris",
    "demo/digits",
    "demo/text-stats",
    "fixtures/echo",
    "fixtures/sleeps",
)


async def test_models_list_shows_iris_with_both_versions_newest_first(api) -> None:
    response = await api.http.get("/v1/models")

    assert response.status_code == 200, response.text
    models = {f"{m['owner']}/{m['name']}": m for m in response.json()["results"]}
    iris = models["demo/iris"]
    assert [v["version_number"] for v in iris["versions"]] == [2, 1]
    assert iris["latest_version"] == 2
    assert [v["status"] for v in iris["versions"]] == ["ready", "ready"]
    assert {"demo/digits", "demo/text-stats", "fixtures/echo", "fixtures/sleeps"} <= models.keys()


async def test_model_shows_input_and_output_schemas_and_deployment_status(api) -> None:
    response = await api.http.get("/v1/models/demo/iris")

    assert response.status_code == 200, response.text
    model = response.json()
    assert (model["owner"], model["name"], model["latest_version"]) == ("demo", "iris", 2)
    for version in model["versions"]:
        schema = version["input_schema"]
        assert schema["required"] == ["features"]
        features = schema["properties"]["features"]
        assert features["type"] == "array"
        assert (features["items"]["minItems"], features["items"]["maxItems"]) == (4, 4)
        assert {"label", "probabilities"} <= version["output_schema"]["properties"].keys()
        assert version["deployment"]["status"] == "ready"
        assert version["deployment"]["error"] is None


async def test_python_model_schema_carries_its_input_constraints(api) -> None:
    response = await api.http.get("/v1/models/demo/text-stats")

    assert response.status_code == 200, response.text
    [version] = response.json()["versions"]
    properties = version["input_schema"]["properties"]
    assert properties["top_k"]["maximum"] == 20
    assert properties["text"]["minLength"] == 1
    assert version["input_schema"]["required"] == ["text"]


async def test_one_version_is_served_with_its_schema(api) -> None:
    response = await api.http.get("/v1/models/demo/iris/versions/1")

    assert response.status_code == 200, response.text
    version = response.json()
    assert version["version_number"] == 1
    assert version["status"] == "ready"
    assert "features" in version["input_schema"]["properties"]
    assert version["output_schema"] is not None
    assert "logistic regression" in version["description"].lower()


async def test_unknown_version_is_404_listing_the_versions(api) -> None:
    response = await api.http.get("/v1/models/demo/iris/versions/9")

    assert response.status_code == 404, response.text
    assert "versions that exist: 1, 2" in response.json()["detail"]


async def test_unknown_model_is_404(api) -> None:
    response = await api.http.get("/v1/models/nobody/nothing")

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "model 'nobody/nothing' not found"}


async def test_unknown_model_version_is_404_naming_the_model(api) -> None:
    response = await api.http.get("/v1/models/nobody/nothing/versions/1")

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "model 'nobody/nothing' not found"}
