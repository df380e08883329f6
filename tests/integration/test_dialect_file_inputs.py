"""URLs inside SlashML's and Baseten's JSON are file inputs like any other: a PNG served on
loopback (allowed by the private-address setting) gives demo/digits-image the dataset's label
through either dialect, and a path on the server is refused in each dialect's own error shape,
nothing opened or fetched."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from _site import Site

pytestmark = pytest.mark.anyio

MODEL = "demo/digits-image"
MODELS = (MODEL,)
SETTINGS = {"fetch_allow_private": True}  # the PNG is served on loopback

DIGITS = load_digits()
THREE = int(np.flatnonzero(DIGITS.target == 3)[0])
# What a caller may not name: a file of the server's, by path or file:// URL.
SERVER_PATHS = ["/etc/hostname", "file:///etc/passwd"]
REFUSED = (
    "a file input is an http(s) URL, a data: URI or an uploaded file's id or URL; "
    "a path on the server cannot be named"
)


def png(index: int) -> bytes:
    pixels = np.round(DIGITS.images[index] / 16 * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with Site.running({"/three.png": (200, {"content-type": "image/png"}, png(THREE))}) as found:
        yield found


def key(api: Any) -> str:
    return str(api.http.headers["Authorization"].removeprefix("Bearer "))


async def slashml(api: Any, model_input: Any) -> Any:
    """Seed 000's request: a json.dumps'd payload, a Token header, POST."""
    return await api.http.post(
        "/model-deployment/v1/models/demo%2Fdigits-image/predict",
        content=json.dumps({"model_input": model_input}),
        headers={"Authorization": f"Token {key(api)}", "Content-Type": "application/json"},
    )


async def baseten(api: Any, body: Any) -> Any:
    """Seed 004's request on the model's host, with its Api-Key header."""
    return await api.http.post(
        "http://model-demo-digits-image.api.example.com/production/predict",
        json=body,
        headers={"Authorization": f"Api-Key {key(api)}"},
    )


def digit(probabilities: list[float]) -> int:
    assert len(probabilities) == 10
    return int(np.argmax(probabilities))


@pytest.mark.parametrize("shape", ["object", "bare"])
async def test_slashml_takes_a_url_in_model_input(api: Any, site: Site, shape: str) -> None:
    url = site.url("/three.png")
    model_input = {"image": url} if shape == "object" else url  # the model's one input

    response = await slashml(api, model_input)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_input"] == model_input
    assert digit(body["model_response"]["probabilities"]) == 3
    record = (await api.http.get(f"/v1/predictions/{body['id']}")).json()
    assert record["input"] == {"image": url}, "the record keeps the URL, not the bytes"


async def test_baseten_takes_a_url_in_its_body(api: Any, site: Site) -> None:
    response = await baseten(api, {"image": site.url("/three.png")})

    assert response.status_code == 200, response.text
    assert digit(response.json()["probabilities"]) == 3


@pytest.mark.parametrize("path", SERVER_PATHS)
async def test_a_server_path_is_slashmls_400_naming_the_field(
    api: Any, site: Site, path: str
) -> None:
    before = site.accepted

    response = await slashml(api, {"image": path})

    assert response.status_code == 400, response.text
    body = response.json()
    assert body == {"error": body["error"], "full_message": [body["error"]]}
    assert_refused(body["error"])
    assert site.accepted == before


@pytest.mark.parametrize("path", SERVER_PATHS)
async def test_a_server_path_is_basetens_400_naming_the_field(api: Any, path: str) -> None:
    response = await baseten(api, {"image": path})

    assert response.status_code == 400, response.text
    assert list(response.json()) == ["error"]
    assert_refused(response.json()["error"])


def assert_refused(message: str) -> None:
    # The field, then (the input being the array or the file) each choice's objection.
    assert message.startswith("invalid input: input.image"), message
    assert message.endswith(REFUSED), message
