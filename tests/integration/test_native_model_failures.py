"""Models that fail: in predict, in setup, in their manifest, or by killing their replica.
Each failure is reported on the prediction (or the deployment) and never stops other models."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = (
    "demo/iris",
    "fixtures/echo",
    "fixtures/raises-in-predict",
    "fixtures/raises-in-setup",
    "fixtures/broken-manifest",
    "fixtures/exits-in-predict",
)


async def test_model_exception_fails_the_prediction_with_source_model(api) -> None:
    created = await api.create("fixtures/raises-in-predict", {"text": "x"})

    failed = await api.wait_for(created["id"])

    assert failed["status"] == "failed", failed
    assert failed["error"]["source"] == "model"
    assert "boom: cannot predict" in failed["error"]["message"]
    assert failed["output"] is None


async def test_setup_failure_marks_the_deployment_failed_with_the_reason(api) -> None:
    response = await api.http.get("/v1/models/fixtures/raises-in-setup")

    assert response.status_code == 200, response.text
    model = response.json()
    assert model["latest_version"] is None
    [version] = model["versions"]
    assert version["status"] == "failed"
    assert version["deployment"]["status"] == "failed"
    assert "setup exploded" in version["deployment"]["error"]


async def test_prediction_for_a_model_that_failed_setup_fails_at_once(api) -> None:
    response = await api.post("fixtures/raises-in-setup", {"text": "x"})

    assert response.status_code == 201, response.text
    record = response.json()
    assert record["status"] == "failed", record
    assert record["error"]["source"] == "internal"
    assert "setup exploded" in record["error"]["message"]
    assert (await api.get(record["id"]))["status"] == "failed"


async def test_broken_manifest_is_listed_failed_with_file_field_and_reason(api) -> None:
    response = await api.http.get("/v1/models")

    assert response.status_code == 200, response.text
    models = {f"{m['owner']}/{m['name']}": m for m in response.json()["results"]}
    [version] = models["fixtures/broken-manifest"]["versions"]
    assert version["status"] == "failed"
    error = version["deployment"]["error"]
    assert "broken-manifest/1/foretell.yaml" in error  # the file
    assert "'runtime'" in error  # the field
    assert "onnx" in error  # the reason: the runtimes that exist
    # Every other model still loaded.
    assert models["fixtures/echo"]["versions"][0]["status"] == "ready"
    assert models["demo/iris"]["latest_version"] == 2


async def test_prediction_for_a_broken_manifest_fails_with_the_manifest_error(api) -> None:
    record = await api.create("fixtures/broken-manifest", {"text": "x"})

    assert record["status"] == "failed", record
    assert record["error"]["source"] == "internal"
    assert "foretell.yaml" in record["error"]["message"]
    assert "'runtime'" in record["error"]["message"]


async def test_other_models_serve_beside_the_broken_ones(api) -> None:
    record = await api.create("fixtures/echo", {"text": "still here"}, prefer="wait=10")

    assert record["status"] == "succeeded", record
    assert record["output"] == {"text": "still here", "n": 1}


async def test_replica_exit_fails_the_prediction_and_the_replica_is_restarted(api) -> None:
    first = await api.create("fixtures/exits-in-predict", {"text": "x"}, prefer="wait=30")

    assert first["status"] == "failed", first
    assert first["error"]["source"] == "internal"
    assert "exited" in first["error"]["message"]
    assert "code 3" in first["error"]["message"]

    echoed = await api.create("fixtures/echo", {"text": "after the crash"}, prefer="wait=10")
    assert echoed["status"] == "succeeded", echoed
    assert echoed["output"]["text"] == "after the crash"

    # A second prediction reaches the restarted replica, which exits again: a failure, no hang.
    second = await api.create("fixtures/exits-in-predict", {"text": "y"}, prefer="wait=30")
    assert second["status"] == "failed", second
    assert second["error"]["source"] == "internal"
    assert "exited" in second["error"]["message"]
    assert second["started_at"] is not None
