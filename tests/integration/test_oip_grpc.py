"""OIP v2 over gRPC: tritonclient.grpc against a real `foretell serve --grpc-port`, beside the
same server's HTTP OIP routes (api/oip_grpc).

One server for the module (demo/digits only, anonymous access on, messages capped at 64 KiB),
ready before any test runs: its gRPC port listens before its HTTP one does (both start in the
lifespan). This process imports tritonclient.grpc, whose `inference.*` messages cannot share a
process with foretell's generated ones: nothing here imports foretell.api.oip_grpc.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from _server import Server, build_repository, free_port, running_server
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.slow

DIGITS = "demo/digits"
MAX_BODY = 64 * 1024
# Two 8x8 images (pixel intensities 0-16), as the model takes them.
ROWS = (np.arange(128, dtype=np.float32).reshape(2, 64) * 7) % 17


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    base = tmp_path_factory.mktemp("oip-grpc")
    port = free_port()
    with running_server(
        build_repository(base, demo=["digits"], fixtures=[]),
        base / "data",
        args=["--grpc-port", str(port), "--anonymous-public"],
        env={"FORETELL_MAX_BODY_BYTES": str(MAX_BODY)},
    ) as started:
        yield started, port


@pytest.fixture
def client(server: tuple[Server, int]) -> Iterator[triton.InferenceServerClient]:
    found = triton.InferenceServerClient(f"127.0.0.1:{server[1]}")
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def key(server: tuple[Server, int]) -> dict[str, str]:
    return {"authorization": f"Bearer {server[0].admin_key}"}


def features(rows: np.ndarray, datatype: str = "FP32") -> triton.InferInput:
    tensor = triton.InferInput("features", list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows)  # raw_input_contents, tritonclient.grpc's only way
    return tensor


def refused(call: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value


# --- health, readiness, metadata ---------------------------------------------------------------


def test_health_is_open_and_readiness_follows_the_model(client, key) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(DIGITS, headers=key)
    assert client.is_model_ready(DIGITS, "1", headers=key)


def test_metadata_is_what_the_http_route_says(server, client, key) -> None:
    with server[0].client() as http:
        over_http = http.get(f"/v2/models/{DIGITS}").json()

    metadata = client.get_model_metadata(DIGITS, headers=key, as_json=True)

    assert over_http["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 64]}]
    assert metadata["name"] == over_http["name"] == DIGITS
    assert metadata["versions"] == over_http["versions"] == ["1"]
    assert metadata["platform"] == over_http["platform"] == "onnxruntime_onnx"
    for side in ("inputs", "outputs"):  # protobuf's JSON writes int64 as strings
        assert [{**t, "shape": [int(d) for d in t["shape"]]} for t in metadata[side]] == (
            over_http[side]
        )
    assert client.get_server_metadata(headers=key, as_json=True) == {
        "name": "foretell",
        "version": "0.1.0",
        "extensions": ["model_repository", "model_repository(unload_dependents)"],
    }


# --- inference ------------------------------------------------------------------------------


def test_infer_raw_contents_answers_as_the_http_route_and_is_recorded(server, client, key) -> None:
    answer = client.infer(DIGITS, [features(ROWS)], request_id="r-7", headers=key)
    with server[0].client() as http:
        over_http = http.post(
            f"/v2/models/{DIGITS}/infer",
            json={
                "inputs": [
                    {
                        "name": "features",
                        "shape": [2, 64],
                        "datatype": "FP32",
                        "data": ROWS.tolist(),
                    }
                ]
            },
        ).json()
        response = answer.get_response(as_json=True)
        record = http.get(
            f"/v1/predictions/{response['parameters']['prediction_id']['string_param']}"
        ).json()

    http_outputs = {t["name"]: t for t in over_http["outputs"]}
    assert response["id"] == "r-7"
    assert (response["model_name"], response["model_version"]) == (DIGITS, "1")
    assert answer.as_numpy("label").tolist() == http_outputs["label"]["data"]
    assert answer.as_numpy("label").dtype == np.int64
    probabilities = answer.as_numpy("probabilities")
    assert probabilities.shape == (2, 10)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(
        probabilities.ravel(), http_outputs["probabilities"]["data"], rtol=1e-6
    )
    # Recorded, as the HTTP route's inferences are: the record holds what the call sent.
    assert "prediction_id" in over_http["parameters"]
    assert record["status"] == "succeeded"
    assert np.asarray(record["input"]["features"], dtype=np.float32).tolist() == ROWS.tolist()


def test_infer_typed_contents_and_one_requested_output(server, key) -> None:
    request = service_pb2.ModelInferRequest(model_name=DIGITS, model_version="1")
    tensor = request.inputs.add(name="features", datatype="FP32", shape=[2, 64])
    tensor.contents.fp32_contents.extend(ROWS.ravel().tolist())
    request.outputs.add(name="label")

    with grpc.insecure_channel(f"127.0.0.1:{server[1]}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        typed = stub.ModelInfer(request, metadata=tuple(key.items()), timeout=30)

    assert [(o.name, o.datatype, list(o.shape)) for o in typed.outputs] == [("label", "INT64", [2])]
    labels = np.frombuffer(typed.raw_output_contents[0], dtype="<i8")
    assert labels.shape == (2,)
    assert typed.id == typed.parameters["prediction_id"].string_param  # no id sent: the record's


def test_a_public_model_answers_without_a_key_when_anonymous_access_is_on(client) -> None:
    assert client.infer(DIGITS, [features(ROWS[:1])]).as_numpy("label").shape == (1,)


# --- errors: status codes and what the message names -------------------------------------------


def test_unknown_models_and_versions_are_not_found(client, key) -> None:
    unknown = refused(lambda: client.infer("demo/nope", [features(ROWS)], headers=key))
    bare = refused(lambda: client.get_model_metadata("digits", headers=key))
    version = refused(lambda: client.is_model_ready(DIGITS, "7", headers=key))

    assert (unknown.status(), unknown.message()) == (
        "StatusCode.NOT_FOUND",
        "model 'demo/nope' not found",
    )
    assert bare.status() == "StatusCode.NOT_FOUND"
    assert "models are named owner/name" in bare.message()
    assert version.status() == "StatusCode.NOT_FOUND"
    assert version.message() == "model 'demo/digits' has no version 7; versions that exist: 1"


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (
            features(ROWS[:, :63].copy()),
            "input 'features' has shape [2, 63]; model 'demo/digits:1' expects [-1, 64] "
            "(-1: any size)",
        ),
        (
            features(ROWS.astype(np.int32), "INT32"),
            "input 'features' has datatype INT32; model 'demo/digits:1' expects FP32",
        ),
    ],
    ids=["shape", "datatype"],
)
def test_a_bad_input_is_invalid_argument_naming_it(client, key, tensor, message) -> None:
    error = refused(lambda: client.infer(DIGITS, [tensor], headers=key))

    assert (error.status(), error.message()) == ("StatusCode.INVALID_ARGUMENT", message)


@pytest.mark.parametrize(
    ("shape", "raw", "message"),
    [
        (
            [1, 64],
            ROWS[0].tobytes()[:-1],
            "input 'features' has shape [1, 64] and datatype FP32, which take 256 bytes (64 of "
            "4 bytes), but its raw_input_contents entry has 255",
        ),
        (  # past what numpy (and so tritonclient) can even build
            [1] * 65,
            bytes(4),
            "input 'features' has a shape of 65 dimensions; at most 64 are accepted",
        ),
        (
            [1, 64],
            None,
            "input 'features' has no data: send its elements in "
            "raw_input_contents or contents.fp32_contents",
        ),
    ],
    ids=["raw-size", "dimensions", "no-data"],
)
def test_raw_requests_refused_naming_the_problem(server, key, shape, raw, message) -> None:
    request = service_pb2.ModelInferRequest(model_name=DIGITS)
    request.inputs.add(name="features", datatype="FP32", shape=shape)
    if raw is not None:
        request.raw_input_contents.append(raw)

    with grpc.insecure_channel(f"127.0.0.1:{server[1]}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request, metadata=tuple(key.items()), timeout=30)

    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == message


def test_a_message_past_the_body_limit_is_refused_naming_the_limit(client, key) -> None:
    big = np.zeros((MAX_BODY // 256 + 1, 64), dtype=np.float32)  # just over 64 KiB of pixels

    error = refused(lambda: client.infer(DIGITS, [features(big)], headers=key))

    assert error.status() == "StatusCode.RESOURCE_EXHAUSTED"
    assert str(MAX_BODY) in error.message()


def test_keys_are_checked_as_over_http(client) -> None:
    missing = refused(lambda: client.get_model_metadata(DIGITS))
    wrong = refused(
        lambda: client.infer(DIGITS, [features(ROWS)], headers={"authorization": "Bearer nope"})
    )

    assert missing.status() == "StatusCode.UNAUTHENTICATED"
    assert missing.message().startswith("no API key; send one as Authorization: Bearer <key>")
    assert missing.message().endswith("(over gRPC, as call metadata: authorization: Bearer <key>)")
    assert wrong.status() == "StatusCode.UNAUTHENTICATED"


# --- the port ---------------------------------------------------------------------------------


def test_a_grpc_port_in_use_stops_the_server_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                *("-m", "foretell.cli.main", "serve", str(tmp_path / "empty")),
                *("--port", str(free_port()), "--grpc-port", str(taken)),
                *("--data-dir", str(tmp_path / "data")),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert done.returncode != 0
    output = " ".join((done.stdout + done.stderr).split())  # rich wraps long lines
    assert f"cannot serve gRPC on 127.0.0.1:{taken}" in output


# --- Triton's repository extension --------------------------------------------------------------


def test_the_repository_index_unload_and_load(client, key) -> None:
    ready = {"name": DIGITS, "version": "1", "state": "READY"}  # JSON leaves "" reason out
    before = client.get_model_repository_index(headers=key, as_json=True)
    reader = refused(lambda: client.unload_model(DIGITS))  # no key: anonymous reads only
    overridden = refused(lambda: client.load_model(DIGITS, config="{}", headers=key))
    client.unload_model(DIGITS, headers=key, unload_dependents=True)
    unloaded = client.get_model_repository_index(headers=key, as_json=True)
    not_ready = refused(lambda: client.infer(DIGITS, [features(ROWS)], headers=key))
    client.load_model(DIGITS, headers=key)
    loaded = client.get_model_repository_index(headers=key, as_json=True)

    assert before == {"models": [ready]}
    assert reader.status() == "StatusCode.UNAUTHENTICATED"
    assert (overridden.status(), overridden.message()) == (
        "StatusCode.INVALID_ARGUMENT",
        "unrecognized load parameter 'config': a model's configuration is its foretell.yaml, "
        "and a load cannot override it",
    )
    assert unloaded == {"models": [{**ready, "state": "UNAVAILABLE", "reason": "unloaded"}]}
    assert (not_ready.status(), not_ready.message()) == (
        "StatusCode.UNAVAILABLE",
        "model 'demo/digits:1' is not ready: deployment is stopped",
    )
    assert loaded == {"models": [ready]}
    assert client.infer(DIGITS, [features(ROWS)], headers=key).as_numpy("label").shape == (2,)
