"""Issue 17's first "done when", on a real server with curl: a PNG uploaded and then sent as an
input gives a label; the same PNG as a data: URI, as a URL served on loopback (allowed by
FORETELL_FETCH_ALLOW_PRIVATE) and as a file part of a multipart create gives the same label,
and fixtures/file-info sees the same bytes each way."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _server import Server, build_repository, running_server
from PIL import Image
from sklearn.datasets import load_digits

from _site import Route, Site

pytestmark = pytest.mark.slow

DIGITS = load_digits()
INDEX = int(np.flatnonzero(DIGITS.target == 3)[0])  # one of the dataset's own threes


def digit_png() -> bytes:
    """The dataset's image as a 64x64 PNG, light ink on dark as the dataset draws it."""
    pixels = (DIGITS.images[INDEX] / 16 * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").resize((64, 64), Image.Resampling.NEAREST).save(buffer, "PNG")
    return buffer.getvalue()


PNG = digit_png()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("file-inputs")
    repo = build_repository(base, demo=["digits-image"], fixtures=["file-info"])
    env = {"FORETELL_FETCH_ALLOW_PRIVATE": "true"}
    with running_server(repo, base / "data", env=env) as started:
        yield started


@pytest.fixture(scope="module")
def png_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("png") / "digit.png"
    path.write_bytes(PNG)
    return path


def curl(server: Server, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail-with-body",
            "-H",
            f"Authorization: Bearer {server.admin_key}",
            *args,
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def predict(server: Server, model: str, value: str) -> dict[str, Any]:
    field = "image" if model == "demo/digits-image" else "file"
    with server.client() as client:
        response = client.post(
            "/v1/predictions",
            json={"model": model, "input": {field: value}},
            headers={"Prefer": "wait=30"},
        )
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    assert record["status"] == "succeeded", record
    return record


def label(record: dict[str, Any]) -> int:
    return int(np.argmax(record["output"]["probabilities"]))


def test_upload_data_uri_url_and_multipart_give_the_same_label(
    server: Server, png_file: Path
) -> None:
    uploaded = curl(server, "-F", f"file=@{png_file}", f"{server.url}/v1/files")
    assert (uploaded["name"], uploaded["content_type"]) == ("digit.png", "image/png")
    data_uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    routes: dict[str, Route] = {"/digit.png": (200, {"content-type": "image/png"}, PNG)}
    with Site.running(routes) as site:
        ways = {
            "upload id": uploaded["id"],
            "upload URL": uploaded["urls"]["get"],
            "data URI": data_uri,
            "loopback URL": site.url("/digit.png"),
        }
        labels = {way: label(predict(server, "demo/digits-image", v)) for way, v in ways.items()}
        infos = {way: predict(server, "fixtures/file-info", v)["output"] for way, v in ways.items()}
    body = json.dumps({"model": "demo/digits-image", "input": {}})
    multipart = curl(
        server,
        "-H",
        "Prefer: wait=30",
        "-F",
        f"json={body}",
        "-F",
        f"image=@{png_file}",
        f"{server.url}/v1/predictions",
    )
    assert multipart["status"] == "succeeded", multipart
    assert multipart["input"]["image"].startswith(f"{server.url}/v1/files/file_")
    labels["multipart"] = label(multipart)

    assert set(labels.values()) == {DIGITS.target[INDEX]}, labels
    for info in infos.values():
        assert (info["size"], info["head"], info["suffix"]) == (len(PNG), PNG[:8].hex(), ".png")
    assert len({info["sha256"] for info in infos.values()}) == 1


def test_a_multipart_create_without_a_json_part_is_400(server: Server, png_file: Path) -> None:
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-H",
            f"Authorization: Bearer {server.admin_key}",
            "-F",
            f"image=@{png_file}",
            "-w",
            "\n%{http_code}",
            f"{server.url}/v1/predictions",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    body, _, status = done.stdout.decode().rpartition("\n")
    assert status == "400", done.stdout
    assert "no 'json' part" in json.loads(body)["detail"]
