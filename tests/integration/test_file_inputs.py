"""A python model's `Path` input through the native API: the same bytes as a data: URI or a URL
on loopback give the same answer; the model gets a local temporary file, gone once it ends;
Validate-Input fetches before anything is recorded, otherwise the fetch is the first step of
running, said in the logs, and its failure is the caller's error naming the field."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from _site import Route, Site

pytestmark = pytest.mark.anyio

MODEL = "fixtures/file-info"
MODELS = (MODEL,)
# The URLs here are on loopback; files past 1 KB are refused, multipart bodies past 4 KB.
SETTINGS = {"fetch_allow_private": True, "max_file_bytes": 1024, "max_upload_bytes": 4096}


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, "PNG")
    return buffer.getvalue()


PNG = png()
DATA_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()


def gone(path: str) -> bool:
    return not Path(path).exists()


async def ids(api: Any) -> set[str]:
    return {p["id"] for p in await api.list_all(model=MODEL)}


async def test_a_data_uri_and_a_url_give_the_same_answer_and_the_file_is_gone_after(
    api: Any,
) -> None:
    routes: dict[str, Route] = {"/digit.png": (200, {"content-type": "image/png"}, PNG)}
    with Site.running(routes) as site:
        by_uri = await api.create(MODEL, {"file": DATA_URI}, prefer="wait=30")
        by_url = await api.create(MODEL, {"file": site.url("/digit.png")}, prefer="wait=30")
    for record in (by_uri, by_url):
        assert record["status"] == "succeeded", record
        assert record["output"]["size"] == len(PNG)
        assert record["output"]["head"] == PNG[:8].hex()
        assert record["output"]["suffix"] == ".png"
        assert gone(record["output"]["path"]), "removed when the prediction ended"
    described = {k: v for k, v in by_uri["output"].items() if k != "path"}
    assert described == {k: v for k, v in by_url["output"].items() if k != "path"}
    assert by_url["input"] == {"file": site.url("/digit.png")}, "the record keeps what was sent"
    assert (
        f"[foretell] input file: fetched {site.url('/digit.png')} ({len(PNG)} bytes, "
        in (by_url["logs"])
    )


async def test_with_validate_input_the_file_is_had_before_and_said_in_the_logs(api: Any) -> None:
    routes: dict[str, Route] = {"/digit.png": (200, {"content-type": "image/png"}, PNG)}
    with Site.running(routes) as site:
        record = await api.create(
            MODEL,
            {"file": site.url("/digit.png")},
            prefer="wait=30",
            headers={"Validate-Input": "true"},
        )
        assert site.accepted == 1
    assert record["status"] == "succeeded", record
    assert record["output"]["size"] == len(PNG)
    said = f"[foretell] input file: fetched {site.url('/digit.png')} ({len(PNG)} bytes, image/png)"
    assert record["logs"].startswith(said), record["logs"]


async def test_the_file_is_removed_when_the_model_fails_too(api: Any) -> None:
    record = await api.create(MODEL, {"file": DATA_URI, "fail": True}, prefer="wait=30")

    assert record["status"] == "failed", record
    path = record["error"]["message"].rsplit("with the file at ", 1)[-1].split()[0]
    assert path.endswith(".png")
    assert gone(path)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("/etc/hostname", "file_reference_invalid"),
        ("file:///etc/passwd", "file_reference_invalid"),
        ("hostname", "file_reference_invalid"),
        ("http://169.254.169.254/latest/meta-data/", "file_url_refused"),
    ],
)
async def test_with_validate_input_a_refused_file_is_422_and_nothing_is_recorded(
    api: Any, value: str, kind: str
) -> None:
    before = await ids(api)

    response = await api.post(MODEL, {"file": value}, headers={"Validate-Input": "true"})

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "input", "file"], kind)
    assert await ids(api) == before


async def test_with_validate_input_a_404_is_422_and_nothing_is_recorded(api: Any) -> None:
    with Site.running({}) as site:
        before = await ids(api)
        response = await api.post(
            MODEL, {"file": site.url("/gone.png")}, headers={"Validate-Input": "true"}
        )
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["type"], error["msg"]) == ("file_fetch_failed", "the URL answered 404 Not Found")
    assert await ids(api) == before


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("/etc/hostname", "file_reference_invalid"),
        ("file:///etc/passwd", "file_reference_invalid"),
        ("http://169.254.169.254/", "file_url_refused"),
        ("http://[::ffff:169.254.169.254]/latest", "file_url_refused"),
    ],
)
async def test_a_server_file_or_metadata_is_422_even_without_validate_input(
    api: Any, value: str, kind: str
) -> None:
    before = await ids(api)

    response = await api.post(MODEL, {"file": value})

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "input", "file"], kind)
    assert await ids(api) == before


async def test_without_validate_input_a_failed_fetch_fails_the_prediction_as_the_callers(
    api: Any,
) -> None:
    with Site.running({}) as site:
        created = await api.create(MODEL, {"file": site.url("/gone.png")})
        record = await api.wait_for(created["id"])
    assert record["status"] == "failed"
    assert record["error"]["source"] == "user"
    (error,) = record["error"]["detail"]
    assert error["loc"] == ["input", "file"]
    assert error["type"] == "file_fetch_failed"


async def test_loopback_is_not_fetched_unless_the_server_allows_it(serve: Any) -> None:
    folder = Path(__file__).parents[1] / "fixtures" / "models" / "fixtures" / "file-info"
    routes: dict[str, Route] = {"/digit.png": (200, {}, PNG)}
    with Site.running(routes) as site:
        async with serve({MODEL: folder}) as private_refused:
            response = await private_refused.post(
                MODEL, {"file": site.url("/digit.png")}, headers={"Validate-Input": "true"}
            )
        assert site.accepted == 0
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["type"] == "file_url_refused"
    assert "FORETELL_FETCH_ALLOW_PRIVATE=true" in error["msg"]


async def post_form(api: Any, body: dict[str, Any], **files: tuple[str, bytes]) -> Any:
    return await api.http.post(
        "/v1/predictions",
        data={"json": json.dumps(body)},
        files={name: (filename, data) for name, (filename, data) in files.items()},
        headers={"Prefer": "wait=30"},
    )


async def test_a_multipart_create_uploads_its_file_parts_as_inputs(api: Any) -> None:
    response = await post_form(
        api, {"model": MODEL, "input": {"fail": False}}, file=("digit.png", PNG)
    )

    assert response.status_code == 201, response.text
    record = response.json()
    assert record["status"] == "succeeded", record
    assert record["output"]["size"] == len(PNG)
    url = record["input"]["file"]
    assert record["input"] == {"fail": False, "file": url}
    assert "/v1/files/file_" in url
    stored = await api.http.get(url)
    assert (stored.status_code, stored.content) == (200, PNG)


async def test_a_multipart_file_part_over_the_file_limit_is_413_and_nothing_recorded(
    api: Any,
) -> None:
    before = await ids(api)

    response = await post_form(api, {"model": MODEL, "input": {}}, file=("big.bin", b"x" * 2000))

    assert response.status_code == 413, response.text
    assert "1024 bytes" in response.text
    assert "max_file_bytes" in response.text
    assert await ids(api) == before


async def test_a_multipart_body_over_the_upload_limit_is_413_and_nothing_recorded(
    api: Any,
) -> None:
    before = await ids(api)

    response = await post_form(api, {"model": MODEL, "input": {}}, file=("big.bin", b"x" * 5000))

    assert response.status_code == 413, response.text
    assert "limit of 4096 bytes (max_upload_bytes)" in response.text
    assert await ids(api) == before


async def test_an_input_given_in_the_json_part_and_as_a_file_is_400(api: Any) -> None:
    response = await post_form(
        api, {"model": MODEL, "input": {"file": DATA_URI}}, file=("digit.png", PNG)
    )

    assert response.status_code == 400, response.text
    assert "input 'file' is given both in the 'json' part and as a file part" in response.text
