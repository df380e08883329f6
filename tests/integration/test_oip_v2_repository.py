"""Triton's model configuration, statistics and repository extension (index, load, unload)
under /v2: through tritonclient against a real `foretell serve` of demo/digits and a model whose
setup fails, and their errors on the in-process app."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from _app import FIXTURES
from _server import build_repository, running_server
from tritonclient.utils import InferenceServerException

# The models `api` serves this module's in-process tests (conftest.py): only these start.
MODELS = ("demo/digits",)
DRAIN_SEEN_WITHIN_S = 20.0  # an unload marks the version stopped at once; generous when busy


@pytest.mark.slow
def test_tritonclient_reads_config_statistics_and_the_repository_index(tmp_path: Path) -> None:
    repo = build_repository(tmp_path, demo=["digits"], fixtures=["raises-in-setup"])
    with running_server(repo, tmp_path / "data") as server:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
        try:
            config = client.get_model_config("demo/digits", headers=headers)
            versioned = client.get_model_config("demo/digits", "1", headers=headers)
            before = client.get_inference_statistics("demo/digits", headers=headers)
            started_ms = time.time() * 1000
            pixels = triton.InferInput("features", [1, 64], "FP32")
            pixels.set_data_from_numpy(np.zeros((1, 64), dtype=np.float32))
            for _ in range(2):
                client.infer("demo/digits", [pixels], headers=headers)
            stats = client.get_inference_statistics("demo/digits", headers=headers)
            everything = client.get_inference_statistics(headers=headers)
            index = client.get_model_repository_index(headers=headers)
            with pytest.raises(InferenceServerException) as unknown:
                client.get_model_config("demo/nope", headers=headers)
            with pytest.raises(InferenceServerException) as not_loaded:
                client.get_model_config("fixtures/raises-in-setup", headers=headers)
        finally:
            client.close()
        anonymous = httpx.get(f"{server.url}/v2/models/demo/digits/stats")
        ready_only = httpx.post(
            f"{server.url}/v2/repository/index",
            json={"ready": True},
            headers={"Authorization": f"Bearer {server.admin_key}"},  # tritonclient adds to its own
        )

    assert config == versioned
    assert config["name"] == "demo/digits"
    assert config["platform"] == "onnxruntime_onnx"
    assert config["max_batch_size"] == 32
    assert config["input"] == [{"name": "features", "data_type": "TYPE_FP32", "dims": [64]}]
    assert [o["data_type"] for o in config["output"]] == ["TYPE_INT64", "TYPE_FP32"]
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 0
    assert config["instance_group"] == [{"name": "demo/digits", "kind": "KIND_CPU", "count": 1}]

    assert before["model_stats"][0]["inference_count"] == 0
    [digits] = stats["model_stats"]
    assert (digits["name"], digits["version"]) == ("demo/digits", "1")
    assert digits["inference_count"] == 2
    assert digits["execution_count"] == 2
    assert digits["last_inference"] >= started_ms - 1000
    inference = digits["inference_stats"]
    for counted in ("success", "queue", "compute_infer"):
        assert inference[counted]["count"] == 2, counted
        assert inference[counted]["ns"] > 0, counted
    assert inference["fail"] == {"count": 0, "ns": 0}
    assert inference["success"]["ns"] >= inference["compute_infer"]["ns"]
    assert digits in everything["model_stats"]

    assert {(e["name"], e["version"], e["state"]) for e in index} == {
        ("demo/digits", "1", "READY"),
        ("fixtures/raises-in-setup", "1", "UNAVAILABLE"),
    }
    [failed] = [e for e in index if e["state"] == "UNAVAILABLE"]
    assert failed["reason"]  # why its setup failed
    assert ready_only.json() == [
        {"name": "demo/digits", "version": "1", "state": "READY", "reason": ""}
    ]

    assert unknown.value.status() == "404"
    assert unknown.value.message() == "model 'demo/nope' not found"
    assert not_loaded.value.message().startswith("model 'fixtures/raises-in-setup:1'")
    assert anonymous.status_code == 401, anonymous.text
    assert "error" in anonymous.json()


@pytest.mark.slow
def test_tritonclient_unloads_and_loads_a_model(tmp_path: Path) -> None:
    repo = build_repository(tmp_path, demo=["digits"], fixtures=())
    with running_server(repo, tmp_path / "data") as server:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
        pixels = triton.InferInput("features", [1, 64], "FP32")
        pixels.set_data_from_numpy(np.zeros((1, 64), dtype=np.float32))
        try:
            before = client.get_model_repository_index(headers=headers)
            client.unload_model("demo/digits", headers=headers)
            unloaded = client.get_model_repository_index(headers=headers)
            ready_when_unloaded = client.is_model_ready("demo/digits", headers=headers)
            server_ready_when_unloaded = client.is_server_ready(headers=headers)
            with pytest.raises(InferenceServerException) as not_ready:
                client.infer("demo/digits", [pixels], headers=headers)
            client.unload_model("demo/digits", headers=headers)  # again: nothing to do
            client.load_model("demo/digits", headers=headers)
            loaded = client.get_model_repository_index(headers=headers)
            result = client.infer("demo/digits", [pixels], headers=headers)
            config = client.get_model_config("demo/digits", headers=headers)
            stats = client.get_inference_statistics("demo/digits", headers=headers)
            with pytest.raises(InferenceServerException) as overridden:
                client.load_model("demo/digits", headers=headers, config='{"max_batch_size": 4}')
        finally:
            client.close()

    ready = {"name": "demo/digits", "version": "1", "state": "READY", "reason": ""}
    assert before == [ready]
    assert unloaded == [{**ready, "state": "UNAVAILABLE", "reason": "unloaded"}]
    assert ready_when_unloaded is False
    assert server_ready_when_unloaded is True, "an unloaded model takes no server out of service"
    assert not_ready.value.status() == "503"
    assert not_ready.value.message() == (
        "model 'demo/digits:1' is not ready: deployment is stopped"
    )
    assert loaded == [ready]
    assert result.as_numpy("label").shape == (1,)
    assert config["name"] == "demo/digits"
    [digits] = stats["model_stats"]
    assert digits["inference_stats"]["success"]["count"] >= 1
    assert overridden.value.status() == "400"
    assert overridden.value.message() == (
        "unrecognized load parameter 'config': a model's configuration is its foretell.yaml, "
        "and a load cannot override it"
    )


@pytest.mark.anyio
async def test_a_load_starts_every_version_and_names_the_one_that_failed(
    serve: Any, tmp_path: Path
) -> None:
    model = tmp_path / "mixed"
    model.mkdir()
    (model / "1").symlink_to(FIXTURES / "raises-in-setup" / "1", target_is_directory=True)
    (model / "2").symlink_to(FIXTURES / "echo" / "1", target_is_directory=True)
    async with serve({"acme/mixed": model}) as api:
        unloaded = await api.http.post("/v2/repository/models/acme/mixed/unload")
        stopped = (await api.http.post("/v2/repository/index")).json()
        loaded = await api.http.post("/v2/repository/models/acme/mixed/load")
        index = (await api.http.post("/v2/repository/index")).json()

    assert unloaded.status_code == 200, unloaded.text
    assert [(e["version"], e["state"], e["reason"]) for e in stopped] == [
        ("1", "UNAVAILABLE", "unloaded"),
        ("2", "UNAVAILABLE", "unloaded"),
    ]
    assert loaded.status_code == 503, loaded.text
    assert loaded.json()["error"].startswith("model 'acme/mixed:1' failed to load:")
    assert "setup exploded" in loaded.json()["error"]
    assert [(e["version"], e["state"]) for e in index] == [("1", "UNAVAILABLE"), ("2", "READY")]
    assert "setup exploded" in index[0]["reason"]


@pytest.mark.anyio
async def test_a_version_draining_its_work_is_unloading(serve: Any) -> None:
    async with serve({"acme/sleeps": FIXTURES / "sleeps"}) as api:
        started = await api.create("acme/sleeps:1", {"seconds": 30})
        await api.wait_for(started["id"], {"processing"})
        unload = asyncio.create_task(api.http.post("/v2/repository/models/acme/sleeps/unload"))
        deadline = time.monotonic() + DRAIN_SEEN_WITHIN_S
        while (index := (await api.http.post("/v2/repository/index")).json())[0][
            "state"
        ] != "UNLOADING":
            assert time.monotonic() < deadline, index
            await asyncio.sleep(0.01)
        draining = not unload.done()
        await api.http.post(f"/v1/predictions/{started['id']}/cancel")  # its drain ends
        unloaded = await unload
        after = (await api.http.post("/v2/repository/index")).json()

    assert index == [{"name": "acme/sleeps", "version": "1", "state": "UNLOADING", "reason": ""}]
    assert draining
    assert unloaded.status_code == 200, unloaded.text
    assert after == [{**index[0], "state": "UNAVAILABLE", "reason": "unloaded"}]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/v2/models/demo/nope/stats", None, 404, "model 'demo/nope' not found"),
        (
            "GET",
            "/v2/models/demo/digits/versions/x/config",
            None,
            400,
            "model version 'x' is not a version number; versions are 1, 2, …",
        ),
        (
            "GET",
            "/v2/models/demo/digits/versions/9/stats",
            None,
            404,
            "model 'demo/digits' has no version 9; versions that exist: 1",
        ),
        ("POST", "/v2/repository/models/demo/nope/load", None, 404, "model 'demo/nope' not found"),
        (
            "POST",
            "/v2/repository/models/demo/digits/load",
            {"parameters": {"replicas": 2}},
            400,
            "unrecognized load parameter 'replicas': foretell's load takes no parameters",
        ),
        (
            "POST",
            "/v2/repository/models/demo/digits/unload",
            {"parameters": {"unload_dependents": "yes"}},
            400,
            "unload parameter 'unload_dependents' must be a boolean, not str",
        ),
        (
            "POST",
            "/v2/repository/models/demo/digits/unload",
            {"parameters": "all"},
            400,
            "body.parameters: Input should be a valid dictionary",
        ),
    ],
)
async def test_errors_are_in_the_protocols_shape(
    api, method: str, path: str, body: object, status: int, message: str
) -> None:
    response = await api.http.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json() == {"error": message}


@pytest.mark.anyio
async def test_a_repository_index_body_that_is_not_triton_s_is_refused(api) -> None:
    response = await api.http.post("/v2/repository/index", json={"ready": "maybe"})
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "body.ready: Input should be a valid boolean, unable to interpret input"
    }
