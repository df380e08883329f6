"""Files over the Open Inference Protocol v2: a BYTES tensor for an input the model takes as a
file is that file's bytes (binary data over HTTP, raw_input_contents over gRPC, as tritonclient
sends them), recorded as a data: URI and resolved as any file input; a file the model returns
comes back as a BYTES tensor of its URL. tritonclient against a real `foretell serve`."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from _server import Server, build_repository, free_port, running_server
from PIL import Image
from sklearn.datasets import load_digits
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.slow

MODEL = "demo/digits-image"
DIGITS = load_digits()
SEVEN = int(np.flatnonzero(DIGITS.target == 7)[0])
DATA_URI = "data:application/octet-stream;base64,"


def png(index: int) -> bytes:
    """The dataset's image `index` as an 8x8 grayscale PNG, light ink on dark."""
    pixels = np.round(DIGITS.images[index] / 16 * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, "PNG")
    return buffer.getvalue()


PNG = png(SEVEN)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    base = tmp_path_factory.mktemp("oip-files")
    grpc_port = free_port()
    with running_server(
        build_repository(base, demo=["digits-image"], fixtures=["draws-image"]),
        base / "data",
        args=["--grpc-port", str(grpc_port)],
    ) as started:
        yield started, grpc_port


@pytest.fixture
def key(server: tuple[Server, int]) -> dict[str, str]:
    return {"authorization": f"Bearer {server[0].admin_key}"}


def bytes_tensor(module: Any, name: str, *elements: bytes) -> Any:
    tensor = module.InferInput(name, [len(elements)], "BYTES")
    data = np.array(list(elements), dtype=np.object_)
    if module is triton_http:
        tensor.set_data_from_numpy(data, binary_data=True)  # tritonclient.http's default
    else:
        tensor.set_data_from_numpy(data)  # raw_input_contents, tritonclient.grpc's only way
    return tensor


def label(result: Any) -> int:
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (10,)
    return int(np.argmax(probabilities))


def recorded_input(server: Server, prediction_id: str) -> Any:
    with server.client() as http:
        record = http.get(f"/v1/predictions/{prediction_id}")
    assert record.status_code == 200, record.text
    assert record.json()["status"] == "succeeded", record.json()
    return record.json()["input"]


def test_a_png_as_binary_bytes_over_http_gives_the_label_and_is_recorded_as_a_data_uri(
    server: tuple[Server, int], key: dict[str, str]
) -> None:
    client = triton_http.InferenceServerClient(server[0].url.removeprefix("http://"))
    try:
        result = client.infer(MODEL, [bytes_tensor(triton_http, "image", PNG)], headers=key)
    finally:
        client.close()

    assert label(result) == 7
    prediction_id = result.get_response()["parameters"]["prediction_id"]
    image = recorded_input(server[0], prediction_id)["image"]
    assert image.startswith(DATA_URI)
    assert base64.b64decode(image.removeprefix(DATA_URI)) == PNG


def test_a_png_as_raw_bytes_over_grpc_gives_the_label(
    server: tuple[Server, int], key: dict[str, str]
) -> None:
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server[1]}")
    try:
        result = client.infer(MODEL, [bytes_tensor(triton_grpc, "image", PNG)], headers=key)
    finally:
        client.close()

    assert label(result) == 7
    prediction_id = result.get_response().parameters["prediction_id"].string_param
    image = recorded_input(server[0], prediction_id)["image"]
    assert base64.b64decode(image.removeprefix(DATA_URI)) == PNG


def test_the_same_model_takes_the_image_as_an_fp32_array_and_a_reference_as_json_text(
    server: tuple[Server, int], key: dict[str, str]
) -> None:
    pixels = (DIGITS.images[SEVEN] / 16).astype(np.float32).reshape(1, 1, 8, 8)
    array = triton_http.InferInput("image", [1, 1, 8, 8], "FP32")
    array.set_data_from_numpy(pixels)
    client = triton_http.InferenceServerClient(server[0].url.removeprefix("http://"))
    try:
        by_array = client.infer(MODEL, [array], headers=key)
    finally:
        client.close()
    # In JSON, a BYTES element is text: for a file input, a reference to the file.
    text = {"name": "image", "shape": [1], "datatype": "BYTES", "data": [DATA_URI + b64(PNG)]}
    with server[0].client() as http:
        by_reference = http.post(f"/v2/models/{MODEL}/infer", json={"inputs": [text]})

    assert label(by_array) == 7
    assert by_reference.status_code == 200, by_reference.text
    (probabilities,) = by_reference.json()["outputs"]
    assert int(np.argmax(probabilities["data"])) == 7


def test_bytes_that_are_not_an_image_are_the_callers_error(
    server: tuple[Server, int], key: dict[str, str]
) -> None:
    garbage = bytes_tensor(triton_http, "image", b"\xff\x00 not a picture")
    client = triton_http.InferenceServerClient(server[0].url.removeprefix("http://"))
    try:
        with pytest.raises(InferenceServerException) as caught:
            client.infer(MODEL, [garbage], headers=key)
    finally:
        client.close()

    assert caught.value.status() == "400"
    assert caught.value.message() == (
        "invalid input: input.image: Value error, the file is not an image Pillow can read "
        "(PNG, JPEG, …)"
    )


def test_two_files_for_one_file_input_are_400(
    server: tuple[Server, int], key: dict[str, str]
) -> None:
    client = triton_http.InferenceServerClient(server[0].url.removeprefix("http://"))
    try:
        with pytest.raises(InferenceServerException) as caught:
            client.infer(MODEL, [bytes_tensor(triton_http, "image", PNG, PNG)], headers=key)
    finally:
        client.close()

    assert caught.value.message() == (
        "input 'image' has shape [2]; model 'demo/digits-image:1' takes one value: send shape [1]"
    )


def test_a_file_output_is_a_bytes_tensor_of_its_url(
    server: tuple[Server, int], key: dict[str, str]
) -> None:
    size = triton_http.InferInput("size", [1], "INT64")
    size.set_data_from_numpy(np.array([5], dtype=np.int64))
    client = triton_http.InferenceServerClient(server[0].url.removeprefix("http://"))
    try:
        result = client.infer("fixtures/draws-image", [size], headers=key)
    finally:
        client.close()

    (url,) = result.as_numpy("output").tolist()
    url = url.decode() if isinstance(url, bytes) else url
    assert "/v1/files/" in url
    downloaded = httpx.get(url, headers={"Authorization": key["authorization"]})
    assert downloaded.status_code == 200
    assert downloaded.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(downloaded.content)).size == (5, 5)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
