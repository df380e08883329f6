"""The Open Inference Protocol v2 under /v2: metadata, health, typed-tensor inference and its
errors on the session's app, then tritonclient itself against a real `foretell serve`."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from _app import FIXTURES
from _server import build_repository, running_server
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = (
    "demo/iris",
    "demo/text-stats",
    "demo/diabetes",
    "fixtures/echo",
    "fixtures/raises-in-predict",
    "fixtures/raises-in-setup",
    "fixtures/sleeps",
)

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
IRIS = "/v2/models/demo/iris"


def features(data: list[Any], shape: list[int], datatype: str = "FP32") -> dict[str, Any]:
    return {"name": "features", "shape": shape, "datatype": datatype, "data": data}


def scalar(name: str, datatype: str, value: Any) -> dict[str, Any]:
    return {"name": name, "shape": [1], "datatype": datatype, "data": [value]}


async def infer(api, path: str, *inputs: dict[str, Any], **body: Any) -> httpx.Response:
    return await api.http.post(f"{path}/infer", json={"inputs": list(inputs), **body})


async def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": message}


def by_name(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {tensor["name"]: tensor for tensor in response.json()["outputs"]}


# --- server and model metadata, health (in-process) -------------------------------------------


async def test_server_metadata_names_foretell_and_triton_s_extensions_it_has(api) -> None:
    response = await api.http.get("/v2")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": "foretell",
        "version": "0.1.0",
        "extensions": [
            "model_repository",
            "model_repository(unload_dependents)",
            "model_configuration",
            "statistics",
        ],
    }


async def test_server_is_live(api) -> None:
    response = await api.http.get("/v2/health/live")

    assert (response.status_code, response.json()) == (200, {"live": True})


async def test_server_is_not_ready_while_a_model_has_no_ready_version(api) -> None:
    # The session's repository holds fixture models that fail to load on purpose.
    response = await api.http.get("/v2/health/ready")

    assert (response.status_code, response.json()) == (400, {"ready": False})


async def test_onnx_model_metadata_has_triton_platform_datatypes_and_shapes(api) -> None:
    response = await api.http.get(IRIS)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": "demo/iris",
        "versions": ["1", "2"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ],
    }


async def test_version_metadata_answers_for_that_version(api) -> None:
    response = await api.http.get(f"{IRIS}/versions/1")

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "demo/iris"
    assert response.json()["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]


async def test_python_model_metadata_reads_tensors_from_its_json_schema(api) -> None:
    response = await api.http.get("/v2/models/demo/text-stats")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": "demo/text-stats",
        "versions": ["1"],
        "platform": "foretell_python",
        "inputs": [
            {"name": "text", "datatype": "BYTES", "shape": [1]},
            {"name": "top_k", "datatype": "INT64", "shape": [1]},
            {"name": "case", "datatype": "BYTES", "shape": [1]},
        ],
        "outputs": [
            {"name": "words", "datatype": "INT64", "shape": [1]},
            {"name": "characters", "datatype": "INT64", "shape": [1]},
            {"name": "top_words", "datatype": "BYTES", "shape": [-1]},
        ],
    }


async def test_sklearn_model_metadata_reads_fixed_dimensions_from_array_lengths(api) -> None:
    response = await api.http.get("/v2/models/demo/diabetes")

    assert response.status_code == 200, response.text
    assert response.json()["platform"] == "foretell_sklearn"
    assert response.json()["inputs"] == [
        {"name": "features", "datatype": "FP64", "shape": [-1, 10]}
    ]


async def test_model_ready_is_200_for_a_ready_model_and_its_versions(api) -> None:
    latest = await api.http.get(f"{IRIS}/ready")
    pinned = await api.http.get(f"{IRIS}/versions/1/ready")

    assert (latest.status_code, latest.json()) == (200, {"name": "demo/iris", "ready": True})
    assert (pinned.status_code, pinned.json()) == (200, {"name": "demo/iris", "ready": True})


async def test_model_ready_is_400_for_a_model_that_failed_to_load(api) -> None:
    response = await api.http.get("/v2/models/fixtures/raises-in-setup/ready")

    assert response.status_code == 400, response.text
    assert response.json() == {"name": "fixtures/raises-in-setup", "ready": False}


async def test_metadata_of_a_model_that_failed_to_load_is_503_with_the_reason(api) -> None:
    response = await api.http.get("/v2/models/fixtures/raises-in-setup")

    await assert_error(
        response,
        503,
        "model 'fixtures/raises-in-setup:1' failed to load: RaisesInSetup.setup() raised "
        "RuntimeError: setup exploded (at predict.py:8)",
    )


async def test_unknown_model_is_404(api) -> None:
    response = await api.http.get("/v2/models/demo/nope")

    await assert_error(response, 404, "model 'demo/nope' not found")


async def test_unknown_version_is_404_listing_the_versions(api) -> None:
    response = await api.http.get(f"{IRIS}/versions/9")

    await assert_error(
        response, 404, "model 'demo/iris' has no version 9; versions that exist: 1, 2"
    )


async def test_a_version_that_is_not_a_number_is_400(api) -> None:
    response = await api.http.get(f"{IRIS}/versions/latest/ready")

    await assert_error(
        response, 400, "model version 'latest' is not a version number; versions are 1, 2, …"
    )


async def test_a_slash_escaped_in_the_name_reaches_the_same_model(api) -> None:
    response = await api.http.get("/v2/models/demo%2Firis/ready")

    assert (response.status_code, response.json()) == (200, {"name": "demo/iris", "ready": True})


# --- inference (in-process) --------------------------------------------------------------------


async def test_infer_iris_with_flat_data_returns_flat_outputs_with_shapes(api) -> None:
    response = await infer(api, IRIS, features([*SETOSA, *VIRGINICA], [2, 4]))

    body = response.json()
    assert response.status_code == 200, response.text
    assert (body["model_name"], body["model_version"]) == ("demo/iris", "2")
    outputs = by_name(response)
    assert outputs["label"] == {"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 2]}
    probabilities = outputs["probabilities"]
    assert (probabilities["datatype"], probabilities["shape"]) == ("FP32", [2, 3])
    assert len(probabilities["data"]) == 6
    assert sum(probabilities["data"][:3]) == pytest.approx(1.0, abs=1e-5)


async def test_infer_with_nested_data_answers_as_flat_data_does(api) -> None:
    flat = await infer(api, IRIS, features([*SETOSA, *VIRGINICA], [2, 4]))
    nested = await infer(api, IRIS, features([SETOSA, VIRGINICA], [2, 4]))

    assert by_name(nested) == by_name(flat)


async def test_infer_echoes_the_request_id_and_names_the_prediction_record(api) -> None:
    response = await infer(api, IRIS, features(SETOSA, [1, 4]), id="my-request-7")

    body = response.json()
    assert response.status_code == 200, response.text
    assert body["id"] == "my-request-7"
    record = await api.get(body["parameters"]["prediction_id"])
    assert record["status"] == "succeeded"
    assert record["model"] == {"owner": "demo", "name": "iris", "version_number": 2}
    assert record["input"] == {"features": [SETOSA]}


async def test_without_a_request_id_the_id_is_the_prediction_records(api) -> None:
    response = await infer(api, IRIS, features(SETOSA, [1, 4]))

    body = response.json()
    assert response.status_code == 200, response.text
    assert body["id"] == body["parameters"]["prediction_id"]
    assert (await api.get(body["id"]))["status"] == "succeeded"


async def test_infer_returns_only_the_requested_outputs_in_their_order(api) -> None:
    response = await infer(api, IRIS, features(SETOSA, [1, 4]), outputs=[{"name": "probabilities"}])

    assert list(by_name(response)) == ["probabilities"]


async def test_infer_on_a_version_runs_that_version(api) -> None:
    response = await infer(api, f"{IRIS}/versions/1", features(SETOSA, [1, 4]))

    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == "1"
    assert by_name(response)["label"]["data"] == [0]


async def test_python_model_takes_shape_1_tensors_as_its_scalar_inputs(api) -> None:
    response = await infer(
        api, "/v2/models/fixtures/echo", scalar("text", "BYTES", "hi"), scalar("n", "INT64", 3)
    )

    assert by_name(response) == {
        "text": {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["hi"]},
        "n": {"name": "n", "datatype": "INT64", "shape": [1], "data": [3]},
    }


async def test_output_elements_that_are_objects_are_json_texts_in_bytes(api) -> None:
    response = await infer(
        api, "/v2/models/demo/text-stats", scalar("text", "BYTES", "the cat the dog")
    )

    top_words = by_name(response)["top_words"]
    assert (top_words["datatype"], top_words["shape"]) == ("BYTES", [3])
    assert top_words["data"][0] == '{"word":"the","count":2}'


async def test_an_output_that_is_no_object_is_one_tensor_named_output(api) -> None:
    response = await infer(api, "/v2/models/fixtures/sleeps", scalar("seconds", "FP64", 0))

    assert by_name(response) == {
        "output": {"name": "output", "datatype": "FP64", "shape": [1], "data": [0.0]}
    }


async def test_binary_input_data_after_the_json_is_read_as_tritonclient_sends_it(api) -> None:
    rows = np.array([SETOSA, VIRGINICA], dtype=np.float32).tobytes()
    text = b"the cat"
    header = (
        b'{"inputs":['
        b'{"name":"features","shape":[2,4],"datatype":"FP32",'
        b'"parameters":{"binary_data_size":%d}}]}' % len(rows)
    )
    response = await api.http.post(
        f"{IRIS}/infer",
        content=header + rows,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    strings = struct.pack("<I", len(text)) + text
    stats_header = (
        b'{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES",'
        b'"parameters":{"binary_data_size":%d}}]}' % len(strings)
    )
    stats = await api.http.post(
        "/v2/models/demo/text-stats/infer",
        content=stats_header + strings,
        headers={"Inference-Header-Content-Length": str(len(stats_header))},
    )

    assert by_name(response)["label"]["data"] == [0, 2]
    assert by_name(stats)["words"]["data"] == [2]


# --- inference errors (in-process) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "index", "shown"),
    [
        pytest.param([*SETOSA, *SETOSA[:3], np.nan], 7, "NaN", id="nan"),
        pytest.param([np.inf, *SETOSA[1:]], 0, "Infinity", id="inf"),
        pytest.param([*SETOSA[:2], -np.inf, SETOSA[3]], 2, "-Infinity", id="minus-inf"),
    ],
)
async def test_binary_data_that_is_not_a_finite_number_is_400_naming_the_element(
    api, values: list[float], index: int, shown: str
) -> None:
    """A JSON body cannot carry NaN or ±Inf; binary data could, and the model ran on it, the
    record saying null (a forecaster handed None failed as if it had crashed)."""
    rows = np.array(values, dtype=np.float32).tobytes()
    header = (
        b'{"inputs":[{"name":"features","shape":[%d,4],"datatype":"FP32",'
        b'"parameters":{"binary_data_size":%d}}]}' % (len(values) // 4, len(rows))
    )
    response = await api.http.post(
        f"{IRIS}/infer",
        content=header + rows,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )

    await assert_error(
        response,
        400,
        f"input 'features' element {index} is {shown}; only finite numbers are accepted",
    )


async def test_a_non_finite_scalar_in_binary_fp64_is_400(api) -> None:
    header = (
        b'{"inputs":[{"name":"seconds","shape":[1],"datatype":"FP64",'
        b'"parameters":{"binary_data_size":8}}]}'
    )
    response = await api.http.post(
        "/v2/models/fixtures/sleeps/infer",
        content=header + struct.pack("<d", float("nan")),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )

    await assert_error(
        response, 400, "input 'seconds' element 0 is NaN; only finite numbers are accepted"
    )


async def test_infer_on_an_unknown_model_is_404(api) -> None:
    response = await infer(api, "/v2/models/demo/nope", features(SETOSA, [1, 4]))

    await assert_error(response, 404, "model 'demo/nope' not found")


async def test_a_missing_input_is_400_naming_the_inputs_needed(api) -> None:
    response = await infer(api, "/v2/models/fixtures/echo", scalar("n", "INT64", 3))

    await assert_error(
        response, 400, "input 'text' is missing; model 'fixtures/echo:1' needs: text"
    )


async def test_an_unknown_input_is_400_naming_the_models_inputs(api) -> None:
    response = await infer(api, IRIS, {**features(SETOSA, [1, 4]), "name": "petals"})

    await assert_error(
        response, 400, "model 'demo/iris:2' has no input 'petals'; its inputs: features"
    )


async def test_an_input_given_twice_is_400(api) -> None:
    response = await infer(api, IRIS, features(SETOSA, [1, 4]), features(SETOSA, [1, 4]))

    await assert_error(response, 400, "input 'features' is given twice")


async def test_a_datatype_other_than_the_models_is_400(api) -> None:
    response = await infer(api, IRIS, features(SETOSA, [1, 4], "FP64"))

    await assert_error(
        response, 400, "input 'features' has datatype FP64; model 'demo/iris:2' expects FP32"
    )


async def test_an_unknown_datatype_is_400_listing_the_datatypes(api) -> None:
    response = await infer(api, IRIS, features(SETOSA, [1, 4], "FLOAT"))

    await assert_error(
        response,
        400,
        "input 'features': unknown datatype 'FLOAT'; use one of BOOL, UINT8, UINT16, UINT32, "
        "UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES",
    )


async def test_data_of_another_size_than_the_shape_is_400(api) -> None:
    response = await infer(api, IRIS, features(SETOSA[:3], [1, 4]))

    await assert_error(
        response,
        400,
        "input 'features' has shape [1, 4], which holds 4 elements, but its data has 3",
    )


async def test_a_shape_the_model_does_not_take_is_400(api) -> None:
    response = await infer(api, IRIS, features(SETOSA, [4]))

    await assert_error(
        response,
        400,
        "input 'features' has shape [4]; model 'demo/iris:2' expects [-1, 4] (-1: any size)",
    )


async def test_more_than_one_value_for_a_scalar_input_is_400(api) -> None:
    response = await infer(
        api,
        "/v2/models/fixtures/echo",
        {"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
    )

    await assert_error(
        response,
        400,
        "input 'text' has shape [2]; model 'fixtures/echo:1' takes one value: send shape [1]",
    )


async def test_data_elements_the_datatype_cannot_hold_are_400(api) -> None:
    response = await infer(api, IRIS, features([5.1, 3.5, "1.4", 0.2], [1, 4]))

    await assert_error(
        response,
        400,
        "input 'features' has datatype FP32 but its data element 2 ('1.4') is not a number",
    )


async def test_an_integer_out_of_its_datatypes_range_is_400(api) -> None:
    response = await infer(
        api, "/v2/models/fixtures/echo", scalar("text", "BYTES", "x"), scalar("n", "INT8", 300)
    )

    await assert_error(
        response,
        400,
        "input 'n' has datatype INT8 but its data element 0 (300) is out of INT8's range -128..127",
    )


async def test_input_the_models_schema_rejects_is_400(api) -> None:
    response = await infer(api, "/v2/models/demo/text-stats", scalar("text", "BYTES", ""))

    await assert_error(
        response, 400, "invalid input: input.text: String should have at least 1 character"
    )


async def test_an_unknown_requested_output_is_400_before_running(api) -> None:
    response = await infer(api, IRIS, features(SETOSA, [1, 4]), outputs=[{"name": "logits"}])

    await assert_error(
        response,
        400,
        "model 'demo/iris:2' has no output 'logits'; its outputs: label, probabilities",
    )


async def test_a_body_that_is_not_json_is_400(api) -> None:
    response = await api.http.post(f"{IRIS}/infer", content=b'{"inputs": [')

    await assert_error(
        response,
        400,
        "request body is not valid JSON: unexpected end of data: line 1 column 13 (char 12)",
    )


async def test_a_tensor_without_its_fields_is_400_naming_them(api) -> None:
    response = await api.http.post(f"{IRIS}/infer", json={"inputs": [{"name": "features"}]})

    await assert_error(
        response,
        400,
        "body.inputs.0.shape: Field required; body.inputs.0.datatype: Field required",
    )


async def test_binary_data_shorter_than_its_size_is_400(api) -> None:
    header = (
        b'{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32",'
        b'"parameters":{"binary_data_size":16}}]}'
    )
    response = await api.http.post(
        f"{IRIS}/infer",
        content=header + b"\0" * 8,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )

    await assert_error(
        response,
        400,
        "input 'features' has binary_data_size 16 but only 8 bytes of binary data are left; "
        "the header Inference-Header-Content-Length must give the length of the JSON before "
        "them",
    )


async def test_a_model_that_raises_is_500_with_its_error(api) -> None:
    response = await infer(
        api, "/v2/models/fixtures/raises-in-predict", scalar("text", "BYTES", "x")
    )

    await assert_error(
        response,
        500,
        "model 'fixtures/raises-in-predict:1' failed: ValueError: boom: cannot predict",
    )


async def test_infer_on_a_model_that_failed_to_load_is_503(api) -> None:
    response = await infer(api, "/v2/models/fixtures/raises-in-setup", scalar("text", "BYTES", "x"))

    assert response.status_code == 503, response.text
    assert response.json()["error"].startswith("model 'fixtures/raises-in-setup:1' failed to load")


async def test_infer_on_a_model_still_deploying_is_503_and_nothing_is_ready(serve) -> None:
    async with serve({"fixtures/slow-setup": FIXTURES / "slow-setup"}, ready=False) as api:
        response = await infer(api, "/v2/models/fixtures/slow-setup", scalar("x", "INT64", 1))
        model = await api.http.get("/v2/models/fixtures/slow-setup/ready")
        server = await api.http.get("/v2/health/ready")

        await assert_error(
            response, 503, "model 'fixtures/slow-setup:1' is not ready: deployment is deploying"
        )
        assert response.headers["Retry-After"] == "5"
        assert model.status_code == 400, model.text
        assert server.status_code == 400, server.text
        await api.wait_ready()
        assert (await api.http.get("/v2/health/ready")).status_code == 200


async def test_without_a_key_every_v2_route_is_401_in_the_protocols_error_shape(api) -> None:
    async with httpx.AsyncClient(
        transport=api.http._transport, base_url="http://test"
    ) as anonymous:
        response = await anonymous.post(f"{IRIS}/infer", json={"inputs": []})

    assert response.status_code == 401, response.text
    assert "no API key; send one as Authorization: Bearer <key>" in response.json()["error"]


# --- tritonclient against a real server ---------------------------------------------------------


@pytest.mark.slow
def test_tritonclient_checks_health_reads_metadata_and_infers(tmp_path: Path) -> None:
    with running_server(
        build_repository(tmp_path, demo=["iris"], fixtures=[]), tmp_path / "data"
    ) as server:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
        try:
            assert client.is_server_live(headers=headers)
            assert client.is_server_ready(headers=headers)
            assert client.is_model_ready("demo/iris", headers=headers)
            metadata = client.get_model_metadata("demo/iris", headers=headers)
            rows = np.array([SETOSA, VIRGINICA], dtype=np.float32)
            as_json, as_binary = (
                triton.InferInput("features", list(rows.shape), "FP32") for _ in range(2)
            )
            as_json.set_data_from_numpy(rows, binary_data=False)
            as_binary.set_data_from_numpy(rows)  # tritonclient's default: binary data
            wanted = [triton.InferRequestedOutput("label", binary_data=False)]
            first = client.infer(
                "demo/iris", [as_json], outputs=wanted, request_id="7", headers=headers
            )
            second = client.infer("demo/iris", [as_binary], model_version="1", headers=headers)
            with pytest.raises(InferenceServerException) as unknown:
                client.infer("demo/nope", [as_json], headers=headers)
        finally:
            client.close()

    assert metadata["name"] == "demo/iris"
    assert metadata["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]
    assert first.get_response()["id"] == "7"
    assert first.as_numpy("label").tolist() == [0, 2]
    assert first.as_numpy("probabilities") is None  # not requested
    assert second.as_numpy("label").tolist() == [0, 2]
    assert second.as_numpy("probabilities").shape == (2, 3)
    assert second.get_response()["model_version"] == "1"
    assert unknown.value.status() == "404"
    assert unknown.value.message() == "model 'demo/nope' not found"
