"""upload() sends a path, bytes or a binary file as the multipart part `file` of POST /v1/files;
a local Path in an input is uploaded first and sent as its file's id, once however often it
appears, at any depth."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from client_doubles import KINDS, Answers, FakeClock, record, run


def stored(file_id: str) -> httpx.Response:
    return httpx.Response(201, json={"id": file_id, "name": "x", "urls": {"get": f"/f/{file_id}"}})


def part(request: httpx.Request) -> bytes:
    """The request's multipart body, checked to carry one part named `file`."""
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert request.content.count(b'Content-Disposition: form-data; name="file"') == 1
    return request.content


@pytest.mark.parametrize("kind", KINDS)
def test_upload_sends_a_path_as_the_file_part_with_its_name(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "digit.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nrest")
    answers = Answers(stored("file_1"))

    got = run(kind, answers, FakeClock(), lambda c: c.upload(path))

    assert got["id"] == "file_1"
    (request,) = answers.requests
    assert (request.method, request.url.path) == ("POST", "/v1/files")
    body = part(request)
    assert b'filename="digit.png"' in body
    assert b"\x89PNG\r\n\x1a\nrest" in body


def test_upload_sends_bytes_named_and_typed_as_told() -> None:
    answers = Answers(stored("file_2"))

    run("sync", answers, FakeClock(), lambda c: c.upload(b"a,b\n1,2\n", filename="t.csv",
                                                          content_type="text/csv"))  # fmt: skip

    body = part(answers.requests[0])
    assert b'filename="t.csv"' in body
    assert b"Content-Type: text/csv" in body
    assert b"a,b\n1,2\n" in body


def test_upload_sends_a_file_object_whole() -> None:
    source = io.BytesIO(b"all:of:it")
    source.seek(4)
    answers = Answers(stored("file_3"))

    run("sync", answers, FakeClock(), lambda c: c.upload(source, filename="k.bin"))

    body = part(answers.requests[0])
    assert b'filename="k.bin"' in body
    assert b"\r\n\r\nall:of:it\r\n" in body


@pytest.mark.parametrize("kind", KINDS)
def test_a_path_in_an_input_is_uploaded_and_sent_as_its_id(kind: str, tmp_path: Path) -> None:
    image, mask = tmp_path / "image.png", tmp_path / "mask.png"
    image.write_bytes(b"image-bytes")
    mask.write_bytes(b"mask-bytes")
    created = httpx.Response(201, json=record("starting"))
    answers = Answers(stored("file_i"), stored("file_m"), created)
    given = {"image": image, "layers": [{"mask": mask}, {"mask": image}], "n": 2}

    run(kind, answers, FakeClock(), lambda c: c.create_prediction("a/b", given))

    upload_image, upload_mask, create = answers.requests
    assert b"image-bytes" in part(upload_image)
    assert b"mask-bytes" in part(upload_mask)
    assert json.loads(create.content)["input"] == {
        "image": "file_i",
        "layers": [{"mask": "file_m"}, {"mask": "file_i"}],
        "n": 2,
    }
    assert given["image"] == image  # the caller's input is left as it was
