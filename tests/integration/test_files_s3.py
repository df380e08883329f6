"""`foretell serve --files s3://bucket/prefix`: uploads land in the bucket (a real moto S3
server, started here), download whole and in ranges from it, and deletion removes the object."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
from _server import Server, build_repository, running_server

from _s3 import S3_ENV, MotoServer


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer.start(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bucket(moto: MotoServer) -> str:
    return moto.bucket()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, moto: MotoServer, bucket: str
) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("files-s3")
    repo = build_repository(base, demo=False, fixtures=())
    env = {**S3_ENV, "FORETELL_S3_ENDPOINT_URL": moto.url}
    args = ["--files", f"s3://{bucket}/uploads"]
    with running_server(repo, base / "data", env=env, args=args) as server:
        yield server


def test_an_upload_is_an_object_in_the_bucket_and_downloads_from_it(
    server: Server, moto: MotoServer, bucket: str
) -> None:
    data = os.urandom(600 * 1024)  # several chunks each way
    with server.client() as http:
        made = http.post("/v1/files", files={"file": ("noise.bin", data)})
        assert made.status_code == 201, made.text
        record = made.json()
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert moto.keys(bucket) == [f"uploads/{record['id']}"]

        got = http.get(record["urls"]["get"])
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-length"] == str(len(data))
        part = http.get(record["urls"]["get"], headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206
        assert part.content == data[1000:2000]

        assert http.delete(f"/v1/files/{record['id']}").status_code == 204
        assert moto.keys(bucket) == []
        assert http.get(record["urls"]["get"]).status_code == 410
    staged = list((server.data_dir / "files-staging").iterdir())
    assert staged == []  # nothing left behind on the way to the bucket
    assert not (server.data_dir / "files").exists()


def test_a_put_the_store_refuses_keeps_nothing(
    server: Server, moto: MotoServer, bucket: str
) -> None:
    """Last in this module: it removes the server's bucket."""
    moto.client().delete_bucket(Bucket=bucket)
    with server.client() as http:
        before = http.get("/v1/files").json()["results"]
        failed = http.post("/v1/files?filename=x.bin", content=b"x" * 1000)
        assert failed.status_code == 503, failed.text
        assert failed.json()["detail"].startswith(f"the store s3://{bucket}/uploads is unavailable")
        assert "NoSuchBucket" in failed.json()["detail"]
        assert failed.headers["retry-after"] == "5"
        assert http.get("/v1/files").json()["results"] == before
    assert list((server.data_dir / "files-staging").iterdir()) == []
