"""POST /v1/files and GET /v1/files/{id} on a real `foretell serve` (no models: it starts in
about a second): curl's multipart and raw uploads, downloads whole and in ranges, owners, the
size caps, a declared type the bytes are not, and bodies that lie about their length."""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server import Server, build_repository, running_server, wait_for
from PIL import Image

MAX_FILE = 64 * 1024  # max_file_bytes
MAX_UPLOAD = 256 * 1024  # max_upload_bytes: above a file's cap, so that one is met first
MAX_BODY = 16 * 1024  # max_body_bytes: uploads are not held to it
BODY_TIMEOUT_S = 1.0  # a body that stops coming is cut off after this


def png(size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), "teal").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("files")
    env = {
        "FORETELL_MAX_FILE_BYTES": str(MAX_FILE),
        "FORETELL_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "FORETELL_MAX_BODY_BYTES": str(MAX_BODY),
        "FORETELL_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
    }
    repo = build_repository(base, demo=False, fixtures=())
    with running_server(repo, base / "data", env=env) as server:
        yield server


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def key_of(http: httpx.Client, owner: str, scope: str = "predict") -> dict[str, str]:
    made = http.post("/v1/keys", json={"owner": owner, "scope": scope, "name": "files test"})
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}


@pytest.fixture(scope="module")
def acme(http: httpx.Client) -> dict[str, str]:
    return key_of(http, "acme")


def stored_blobs(server: Server) -> list[Path]:
    """Every file under data_dir/files, staged ones included."""
    return sorted(p for p in (server.data_dir / "files").rglob("*") if p.is_file())


def curl(server: Server, headers: dict[str, str], *args: str) -> tuple[int, str]:
    """curl's status and body for a request to the server."""
    auth = [f"-H{name}: {value}" for name, value in headers.items()]
    out = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *auth, *args],
        capture_output=True,
        check=True,
        timeout=30,
        text=True,
    ).stdout
    body, _, status = out.rpartition("\n")
    return int(status), body


def test_curl_multipart_upload_then_download(
    server: Server, http: httpx.Client, acme: dict[str, str], tmp_path: Path
) -> None:
    image = png()
    (tmp_path / "cat.png").write_bytes(image)
    status, body = curl(
        server, acme, "-F", f"file=@{tmp_path / 'cat.png'}", f"{server.url}/v1/files"
    )
    assert status == 201, body
    record = httpx.Response(200, content=body).json()
    assert record["name"] == "cat.png"
    assert record["content_type"] == "image/png"
    assert record["size"] == len(image)
    assert record["sha256"] == hashlib.sha256(image).hexdigest()
    assert record["urls"]["get"] == f"{server.url}/v1/files/{record['id']}"
    assert record["expires_at"] > record["created_at"]

    got = http.get(record["urls"]["get"], headers=acme)
    assert got.status_code == 200
    assert got.content == image
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-length"] == str(len(image))
    assert got.headers["etag"] == f'"{record["sha256"]}"'
    assert got.headers["content-disposition"] == 'attachment; filename="cat.png"'
    again = http.get(record["urls"]["get"], headers={**acme, "If-None-Match": got.headers["etag"]})
    assert again.status_code == 304


def test_curl_raw_body_named_by_header_or_query(
    server: Server, http: httpx.Client, acme: dict[str, str], tmp_path: Path
) -> None:
    data = b"a,b\n1,2\n" * 3000  # 24 KB: past max_body_bytes, an upload all the same
    (tmp_path / "table.csv").write_bytes(data)
    named = {**acme, "Content-Disposition": "attachment; filename*=UTF-8''t%C3%A4ble.csv"}
    status, body = curl(
        server, named, "--data-binary", f"@{tmp_path / 'table.csv'}", f"{server.url}/v1/files"
    )
    assert status == 201, body
    record = httpx.Response(200, content=body).json()
    assert (record["name"], record["content_type"], record["size"]) == (
        "täble.csv",
        "text/csv",
        len(data),
    )
    got = http.get(f"/v1/files/{record['id']}", headers=acme)
    assert got.content == data
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"t_ble.csv\"; filename*=UTF-8''t%C3%A4ble.csv"
    )

    image = png()
    raw = http.post("/v1/files?filename=dot.png", content=image, headers=acme)
    assert raw.status_code == 201, raw.text
    assert raw.json()["content_type"] == "image/png"
    assert raw.headers["location"] == raw.json()["urls"]["get"]


def test_byte_ranges(http: httpx.Client, acme: dict[str, str]) -> None:
    data = bytes(range(256)) * 4
    file_id = http.post("/v1/files?filename=b.bin", content=data, headers=acme).json()["id"]

    def get(spec: str) -> httpx.Response:
        return http.get(f"/v1/files/{file_id}", headers={**acme, "Range": spec})

    middle = get("bytes=10-19")
    assert middle.status_code == 206
    assert middle.content == data[10:20]
    assert middle.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert middle.headers["content-length"] == "10"
    assert get("bytes=1000-").content == data[1000:]
    assert get("bytes=-5").content == data[-5:]
    assert get("bytes=1020-5000").content == data[1020:]
    assert get("bytes=5-1,9-10").status_code == 200  # not one valid range: the whole file
    past = get(f"bytes={len(data)}-")
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(data)}"
    assert "asks for none of the file's 1024 bytes" in past.json()["detail"]


def test_head_answers_gets_headers_without_the_bytes(
    server: Server, http: httpx.Client, acme: dict[str, str]
) -> None:
    image = png()
    file_id = http.post("/v1/files?filename=h.png", content=image, headers=acme).json()["id"]
    whole = http.head(f"/v1/files/{file_id}", headers=acme)
    assert whole.status_code == 200
    assert whole.content == b""
    assert whole.headers["content-type"] == "image/png"
    assert whole.headers["content-length"] == str(len(image))
    assert whole.headers["etag"] == http.get(f"/v1/files/{file_id}", headers=acme).headers["etag"]
    part = http.head(f"/v1/files/{file_id}", headers={**acme, "Range": "bytes=0-3"})
    assert (part.status_code, part.headers["content-length"]) == (206, "4")
    assert part.headers["content-range"] == f"bytes 0-3/{len(image)}"
    missing = http.head("/v1/files/file_00000000000000000000000000000000", headers=acme)
    assert missing.status_code == 404
    # curl -I reads the head alone: the connection stays usable for the next request.
    status, _ = curl(server, acme, "-I", f"{server.url}/v1/files/{file_id}")
    assert status == 200


def test_another_owners_key_gets_404_as_for_a_missing_file(
    http: httpx.Client, acme: dict[str, str]
) -> None:
    file_id = http.post("/v1/files?filename=a.txt", content=b"mine", headers=acme).json()["id"]
    globex = key_of(http, "globex")
    theirs = http.get(f"/v1/files/{file_id}", headers=globex)
    missing = http.get("/v1/files/file_" + "0" * 32, headers=globex)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"].replace(file_id, "X") == missing.json()["detail"].replace(
        "file_" + "0" * 32, "X"
    )
    assert http.delete(f"/v1/files/{file_id}", headers=globex).status_code == 404
    listed = http.get("/v1/files", headers=globex).json()
    assert file_id not in {f["id"] for f in listed["results"]}
    assert http.get(f"/v1/files/{file_id}").status_code == 200  # the admin sees it
    reader = key_of(http, "acme", "read")
    assert http.get(f"/v1/files/{file_id}", headers=reader).status_code == 200
    assert http.post("/v1/files?filename=r", content=b"x", headers=reader).status_code == 403


def test_list_newest_first_and_delete(
    server: Server, http: httpx.Client, acme: dict[str, str]
) -> None:
    owner = key_of(http, "lister")
    ids = [
        http.post(f"/v1/files?filename={n}.txt", content=b"n", headers=owner).json()["id"]
        for n in range(3)
    ]
    first = http.get("/v1/files?limit=2", headers=owner).json()
    assert [f["id"] for f in first["results"]] == [ids[2], ids[1]]
    rest = http.get(first["next"], headers=owner).json()
    assert [f["id"] for f in rest["results"]] == [ids[0]]
    assert rest["next"] is None

    blobs = len(stored_blobs(server))
    assert http.delete(f"/v1/files/{ids[0]}", headers=owner).status_code == 204
    gone = http.get(f"/v1/files/{ids[0]}", headers=owner)
    assert gone.status_code == 410
    assert "was removed at" in gone.json()["detail"]
    assert gone.json()["detail"].endswith("it was deleted")
    assert len(stored_blobs(server)) == blobs - 1
    assert f"deleted file {ids[0]} of lister (1 bytes)" in server.log()


def test_a_file_over_max_file_bytes_is_413_naming_the_limit(
    server: Server, http: httpx.Client, acme: dict[str, str]
) -> None:
    before = stored_blobs(server)
    too_big = b"x" * (MAX_FILE + 1)
    raw = http.post("/v1/files?filename=big.bin", content=too_big, headers=acme)
    assert raw.status_code == 413, raw.text
    assert f"limit of {MAX_FILE} bytes (max_file_bytes)" in raw.json()["detail"]
    form = http.post("/v1/files", files={"file": ("big.bin", too_big)}, headers=acme)
    assert form.status_code == 413, form.text
    assert "max_file_bytes" in form.json()["detail"]
    declared = http.post(
        "/v1/files?filename=huge.bin", content=b"x" * (MAX_UPLOAD + 1), headers=acme
    )
    assert declared.status_code == 413
    assert f"limit of {MAX_UPLOAD} bytes (max_upload_bytes)" in declared.json()["detail"]
    assert stored_blobs(server) == before


def test_a_declared_image_that_is_text_is_refused(
    server: Server, http: httpx.Client, acme: dict[str, str]
) -> None:
    before = stored_blobs(server)
    form = http.post(
        "/v1/files", files={"file": ("cat.png", b"just text", "image/png")}, headers=acme
    )
    assert form.status_code == 400, form.text
    assert form.json()["detail"] == (
        "file 'cat.png': declared image/png, but the bytes are not an image "
        "(their kind is not recognized)"
    )
    raw = http.post(
        "/v1/files?filename=x.png",
        content=b"%PDF-1.4 a document",
        headers={**acme, "Content-Type": "image/png"},
    )
    assert raw.status_code == 400
    assert "they look like application/pdf" in raw.json()["detail"]
    assert stored_blobs(server) == before


def test_a_file_part_with_no_filename_is_told_apart(
    server: Server, http: httpx.Client, acme: dict[str, str]
) -> None:
    # curl -F 'file=<path' sends the file's bytes as a plain field: the part is named right,
    # and the answer must say what it lacks rather than "expected 'file', got 'file'".
    before = stored_blobs(server)
    answer = http.post("/v1/files", files={"file": (None, b"bytes")}, headers=acme)
    assert answer.status_code == 400
    assert answer.json()["detail"] == (
        "multipart body: part 'file' has no filename: it is a plain field, not a file "
        "(curl -F file=@path, not file=<path)"
    )
    assert stored_blobs(server) == before


def test_a_compressed_upload_is_refused(http: httpx.Client, acme: dict[str, str]) -> None:
    answer = http.post(
        "/v1/files?filename=a", content=b"\x1f\x8b", headers={**acme, "Content-Encoding": "gzip"}
    )
    assert answer.status_code == 415
    assert "an upload is stored as sent" in answer.json()["detail"]


def nothing_kept(server: Server, before: list[Path]) -> None:
    """Wait until the files on disk are `before` again: a request cut off at the connection
    has its staged bytes removed as its handler unwinds, just after the answer."""
    wait_for(lambda: stored_blobs(server) == before, timeout=30, what="the staged file removed")


def raw_request(server: Server, head: str, body: bytes, *, half_close: bool) -> bytes:
    """Send `head` and `body` on a socket of their own; what the server answers before it
    closes the connection."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def head(server: Server, acme: dict[str, str], path: str, length: int, **more: str) -> str:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: test",
        f"Authorization: {acme['Authorization']}",
        f"Content-Length: {length}",
        *(f"{k}: {v}" for k, v in more.items()),
    ]
    return "\r\n".join(lines) + "\r\n"


def test_a_body_shorter_than_its_content_length_stores_nothing(
    server: Server, http: httpx.Client, acme: dict[str, str]
) -> None:
    before = stored_blobs(server)
    answer = raw_request(
        server, head(server, acme, "/v1/files?filename=s.bin", 5000), b"y" * 100, half_close=True
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"ended after 100 of the 5000 bytes its Content-Length declared" in answer
    nothing_kept(server, before)


def test_a_body_that_stops_short_of_its_content_length_is_408(
    server: Server, http: httpx.Client, acme: dict[str, str]
) -> None:
    before = stored_blobs(server)
    answer = raw_request(
        server, head(server, acme, "/v1/files?filename=w.bin", 5000), b"w" * 100, half_close=False
    )
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"body_timeout_s" in answer
    nothing_kept(server, before)


def test_a_body_longer_than_its_content_length_stores_nothing(
    server: Server, http: httpx.Client, acme: dict[str, str]
) -> None:
    before = stored_blobs(server)
    answer = raw_request(
        server,
        head(server, acme, "/v1/files?filename=l.bin", 100),
        b"z" * 100 + b"and then some more bytes that are no request\r\n\r\n",
        half_close=False,
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"longer than its Content-Length said?" in answer
    nothing_kept(server, before)


def test_a_multipart_body_cut_short_by_its_content_length_is_400(
    server: Server, http: httpx.Client, acme: dict[str, str]
) -> None:
    before = stored_blobs(server)
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="c.bin"\r\n\r\n'
        + b"q" * 500
        + b"\r\n--XyZ--\r\n"
    )
    answer = raw_request(
        server,
        head(
            server,
            acme,
            "/v1/files",
            len(body) - 20,
            **{"Content-Type": "multipart/form-data; boundary=XyZ"},
        ),
        body[:-20],
        half_close=False,
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"ends before its closing boundary" in answer
    nothing_kept(server, before)


def detail(response: httpx.Response) -> Any:
    return response.json()["detail"]
