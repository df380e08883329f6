"""A multipart create that is refused keeps none of the files its parts stored: the caller
never learns their ids, so they would sit in the quota until their retention passed."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image

pytestmark = pytest.mark.anyio

MODEL = "fixtures/file-info"
MODELS = (MODEL,)
SETTINGS = {"max_file_bytes": 1024, "max_upload_bytes": 8192}


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, "PNG")
    return buffer.getvalue()


async def kept(api: Any) -> set[str]:
    """The caller's stored files whose bytes are still kept."""
    response = await api.http.get("/v1/files", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {f["id"] for f in response.json()["results"] if f["deleted_at"] is None}


async def post_form(api: Any, body: dict[str, Any], **files: tuple[str, bytes]) -> Any:
    return await api.http.post(
        "/v1/predictions",
        data={"json": json.dumps(body)},
        files={name: (filename, data) for name, (filename, data) in files.items()},
        headers={"Prefer": "wait=30"},
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "fixtures/no-such-model", "input": {}}, 404),
        ({"model": MODEL, "input": {"fail": "not a boolean"}}, 422),
        ({"model": MODEL, "input": {}, "webhook": 3}, 422),
    ],
)
async def test_a_refused_multipart_create_keeps_none_of_its_files(
    api: Any, body: dict[str, Any], status: int
) -> None:
    before = await kept(api)

    response = await post_form(api, body, file=("digit.png", png()))

    assert response.status_code == status, response.text
    assert await kept(api) == before


async def test_a_later_part_refused_removes_the_files_stored_before_it(api: Any) -> None:
    before = await kept(api)

    response = await post_form(
        api, {"model": MODEL, "input": {}}, file=("digit.png", png()), big=("big.bin", b"x" * 2000)
    )

    assert response.status_code == 413, response.text
    assert "max_file_bytes" in response.text
    assert await kept(api) == before


async def test_an_accepted_multipart_create_keeps_its_file(api: Any) -> None:
    before = await kept(api)

    response = await post_form(api, {"model": MODEL, "input": {}}, file=("digit.png", png()))

    assert response.status_code == 201, response.text
    assert len(await kept(api) - before) == 1


async def test_more_file_parts_than_the_limit_are_refused_before_storing_more(api: Any) -> None:
    # Each file part is stored as it arrives: on a real server a body of a thousand tiny parts
    # stored (and deleted) a thousand files in 5.6 s, their records left in the caller's list.
    before = await kept(api)
    listed = (await api.http.get("/v1/files", params={"limit": 1000})).json()["results"]

    form = [
        b'--B\r\nContent-Disposition: form-data; name="json"\r\n\r\n{"model": "%s"}\r\n'
        % MODEL.encode()
    ]
    form += [
        b'--B\r\nContent-Disposition: form-data; name="f%d"; filename="a"\r\n\r\nx\r\n' % i
        for i in range(65)
    ]
    response = await api.http.post(
        "/v1/predictions",
        content=b"".join([*form, b"--B--\r\n"]),
        headers={"Content-Type": "multipart/form-data; boundary=B"},
    )

    assert response.status_code == 400, response.text
    assert response.json()["detail"] == (
        "multipart body: more than 64 file parts, the limit (one per file input of the model)"
    )
    assert await kept(api) == before
    after = (await api.http.get("/v1/files", params={"limit": 1000})).json()["results"]
    assert len(after) - len(listed) <= 64
