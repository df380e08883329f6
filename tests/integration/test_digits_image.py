"""demo/digits-image, seed 003's image example: the seed's nested-array body through GPUX's
`POST /predict` gives the digit the dataset says, and so does the same digit as a PNG file
through the native API."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

pytestmark = pytest.mark.anyio

MODELS = ("demo/digits-image", "demo/sentiment", "demo/draw-digit")
# Two default models, as `make run` has several: the body's `image` picks this one.
SETTINGS = {"default_model": ["demo/sentiment", "demo/digits-image"]}

DIGITS = load_digits()
# A few of the dataset's own images, one of each of these labels.
SAMPLES = [int(np.flatnonzero(DIGITS.target == label)[0]) for label in (0, 3, 7, 8)]


def seed_body(index: int) -> dict[str, Any]:
    """Seed 003's `{"image": [[[[0.5, 0.3, ...]]]]}`, in full: one image, one channel, 8x8
    pixels 0-1 (the dataset's 0-16 divided by 16)."""
    pixels = DIGITS.images[index] / 16
    return {"image": [[pixels.tolist()]]}


def png(index: int, *, inverted: bool = False) -> bytes:
    """The dataset's image `index` as an 8x8 grayscale PNG, light ink on dark (or, `inverted`,
    dark ink on light, as a scan of paper would be)."""
    pixels = np.round(DIGITS.images[index] / 16 * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(255 - pixels if inverted else pixels, "L").save(buffer, "PNG")
    return buffer.getvalue()


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.mark.parametrize("index", SAMPLES)
async def test_the_seeds_image_body_gives_the_datasets_label(api: Any, index: int) -> None:
    response = await api.http.post("/predict", json=seed_body(index))

    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["probabilities"]
    probabilities = body["probabilities"]  # flat, as the seed shows it: one image in
    assert len(probabilities) == 10
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    assert int(np.argmax(probabilities)) == DIGITS.target[index]


@pytest.mark.parametrize("inverted", [False, True], ids=["light-on-dark", "dark-on-light"])
async def test_a_png_through_the_native_api_gives_the_same_label(api: Any, inverted: bool) -> None:
    for index in SAMPLES:
        image = data_uri(png(index, inverted=inverted))
        record = await api.create("demo/digits-image", {"image": image}, prefer="wait=30")

        assert record["status"] == "succeeded", record
        gpux = await api.http.post("/predict", json=seed_body(index))
        assert int(np.argmax(record["output"]["probabilities"])) == DIGITS.target[index]
        # The PNG's pixels are the array's within 1/510 (rounded to 8 bits): the same answer.
        expected = gpux.json()["probabilities"]
        assert record["output"]["probabilities"] == pytest.approx(expected, abs=0.02)


async def test_gpux_takes_the_image_as_a_file_too(api: Any) -> None:
    index = SAMPLES[1]

    response = await api.http.post("/predict", json={"image": data_uri(png(index))})

    assert response.status_code == 200, response.text
    assert int(np.argmax(response.json()["probabilities"])) == DIGITS.target[index]
    refused = await api.http.post("/predict", json={"image": "/etc/hostname"})
    assert refused.status_code == 400, refused.text
    assert "a path on the server cannot be named" in refused.json()["detail"]


async def test_a_drawn_digits_url_reads_back_as_that_digit(api: Any) -> None:
    drawn = await api.create("demo/draw-digit", {"digit": 4, "size": 32}, prefer="wait=30")
    assert drawn["status"] == "succeeded", drawn
    url = drawn["output"]  # the file the model made, stored: its URL in the record
    assert "/v1/files/" in url
    download = await api.http.get(url)
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(download.content)).size == (32, 32)

    read = await api.create("demo/digits-image", {"image": url}, prefer="wait=30")

    assert read["status"] == "succeeded", read
    assert int(np.argmax(read["output"]["probabilities"])) == 4


async def test_info_describes_the_image_model(api: Any) -> None:
    response = await api.http.get("/info")

    assert response.status_code == 200, response.text
    (described,) = [m for m in response.json()["models"] if m["name"] == "demo/digits-image"]
    assert described["runtime"] == "python"
    assert described["inputs"] == [{"name": "image", "type": "array | file", "shape": None}]
    assert described["outputs"] == [{"name": "probabilities", "type": "array", "shape": None}]
    model = await api.http.get("/v1/models/demo/digits-image")
    (version,) = model.json()["versions"]
    assert list(version["input_schema"]["properties"]) == ["image"]
    assert list(version["output_schema"]["properties"]) == ["probabilities"]


@pytest.mark.parametrize(
    ("image", "said"),
    [
        ([[[[0.5] * 8] * 7]], "an image array has shape [1, 1, 8, 8] (one image, one channel, "),
        ([[[[0.5] * 8] * 8]] * 2, "this one has [2, 1, 8, 8]"),
        ([[[[16.0] * 8] * 8]], "pixel values are 0 (dark) to 1 (light)"),
    ],
)
async def test_an_array_that_is_not_one_8x8_image_is_the_seeds_400(
    api: Any, image: Any, said: str
) -> None:
    response = await api.http.post("/predict", json={"image": image})

    assert response.status_code == 400, response.text
    assert said in response.json()["detail"]
