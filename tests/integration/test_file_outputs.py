"""A model that writes files, on real servers: its record's output is the files' URLs (from a
worker process and from a thread replica), the owner downloads the bytes with their type,
another owner is told they do not exist, webhooks carry the URLs and no bytes, and once the
retention passes the file is gone (410) and the record says data_removed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _receiver import Receiver
from _server import Server, build_repository, running_server, wait_for

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"
FILE_URL = re.compile(r"http://127\.0\.0\.1:\d+/v1/files/(file_[0-9a-f]{32})")
WITHIN_S = 30.0  # generous on a busy machine: each wait ends as soon as its condition holds


@dataclass
class World:
    server: Server
    owner: str  # a key of the models' owner (fixtures)
    other: str  # a key of another owner (globex)

    def as_(self, key: str) -> httpx.Client:
        return self.server.client(headers={"Authorization": f"Bearer {key}"})

    def predict(self, model: str, **body: Any) -> dict[str, Any]:
        """A prediction as the models' owner, waited for; its record as answered."""
        with self.as_(self.owner) as client:
            response = client.post(
                "/v1/predictions",
                json={"model": model, "input": body.pop("input", {}), **body},
                headers={"Prefer": "wait=30"},
            )
        assert response.status_code == 201, response.text
        record: dict[str, Any] = response.json()
        assert record["status"] == "succeeded", record
        return record


def make_key(server: Server, owner: str) -> str:
    with server.client() as admin:
        made = admin.post("/v1/keys", json={"owner": owner, "scope": "predict"})
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("file-outputs")
    repo = build_repository(base, demo=False, fixtures=["draws-image", "draws-images-on-thread"])
    env = {"FORETELL_WEBHOOK_ALLOW_PRIVATE": "true"}
    with running_server(repo, base / "data", env=env) as server:
        yield World(server, make_key(server, "fixtures"), make_key(server, "globex"))


def download(world: World, key: str, url: str) -> httpx.Response:
    with world.as_(key) as client:
        return client.get(url)


def test_a_file_from_a_worker_process_is_a_url_the_owner_downloads(world: World) -> None:
    record = world.predict("fixtures/draws-image", input={"size": 6, "colour": "blue"})
    url = record["output"]
    assert FILE_URL.fullmatch(url), record
    assert record["data_removed"] is False
    got = download(world, world.owner, url)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "image/png"
    assert got.content.startswith(PNG)
    assert int(got.headers["content-length"]) == len(got.content)
    # The stored record is the one answered: a URL, never bytes.
    with world.as_(world.owner) as client:
        again = client.get(f"/v1/predictions/{record['id']}").json()
    assert again["output"] == url


def test_another_owners_key_is_told_the_file_does_not_exist(world: World) -> None:
    url = world.predict("fixtures/draws-image", input={"size": 2})["output"]
    theirs = download(world, world.other, url)
    assert theirs.status_code == 404, theirs.text
    assert PNG not in theirs.content
    (file_id,) = FILE_URL.fullmatch(url).groups()  # type: ignore[union-attr]
    assert file_id in theirs.json()["detail"]


def test_files_nested_in_a_thread_replicas_output_are_each_a_url(world: World) -> None:
    record = world.predict("fixtures/draws-images-on-thread", input={"colours": ["red", "lime"]})
    images = record["output"]["images"]
    assert record["output"]["count"] == 2
    assert len(images) == 2
    assert all(FILE_URL.fullmatch(u) for u in images), images
    assert images[0] != images[1]
    bodies = [download(world, world.owner, u) for u in images]
    assert [b.status_code for b in bodies] == [200, 200]
    assert bodies[0].content != bodies[1].content  # red, then lime
    assert all(b.content.startswith(PNG) for b in bodies)


def test_the_output_schema_shows_a_file_as_a_uri(world: World) -> None:
    with world.as_(world.owner) as client:
        model = client.get("/v1/models/fixtures/draws-image").json()
    assert model["versions"][0]["output_schema"] == {"type": "string", "format": "uri"}


def test_a_webhook_carries_the_url_and_no_bytes(world: World) -> None:
    with Receiver().running() as receiver:
        record = world.predict("fixtures/draws-image", input={"size": 3}, webhook=receiver.url())

        def completed() -> list[Any] | None:
            found = [r for r in receiver.for_prediction(record["id"]) if r.record["completed_at"]]
            return found or None

        (last, *_) = wait_for(completed, timeout=WITHIN_S, what="the completed webhook")
    assert last.record["output"] == record["output"]
    assert FILE_URL.fullmatch(last.record["output"])
    for received in receiver.for_prediction(record["id"]):
        assert PNG not in received.body


def test_after_its_retention_the_file_is_gone_and_the_record_says_so(tmp_path: Path) -> None:
    repo = build_repository(tmp_path, demo=False, fixtures=["draws-image"])
    env = {"FORETELL_FILE_RETENTION_S": "1"}  # swept every quarter of it
    with running_server(repo, tmp_path / "data", env=env) as server:
        key = make_key(server, "fixtures")
        world = World(server, key, key)
        record = world.predict("fixtures/draws-image", input={"size": 2})
        url = record["output"]
        with world.as_(key) as client:

            def removed() -> dict[str, Any] | None:
                got: dict[str, Any] = client.get(f"/v1/predictions/{record['id']}").json()
                return got if got["data_removed"] else None

            after = wait_for(removed, timeout=WITHIN_S, what="data_removed on the record")
            gone = client.get(url)
        assert after["output"] == url  # the URL stays; what it named is gone
        assert gone.status_code == 410, gone.text
        assert "file_retention_s" in gone.json()["detail"]
        assert "deleted file" in server.log()


def test_a_file_past_a_limit_fails_the_prediction_naming_the_limit(tmp_path: Path) -> None:
    repo = build_repository(tmp_path, demo=False, fixtures=["draws-image"])
    # A 1x1 PNG is 69 bytes, a 64x64 one 152: one small file fits, never two, never a big one.
    env = {"FORETELL_MAX_FILE_BYTES": "100", "FORETELL_MAX_FILES_BYTES": "100"}
    with running_server(repo, tmp_path / "data", env=env) as server, server.client() as client:

        def draw(size: int) -> dict[str, Any]:
            body = {"model": "fixtures/draws-image", "input": {"size": size}}
            answer = client.post("/v1/predictions", json=body, headers={"Prefer": "wait=30"})
            assert answer.status_code == 201, answer.text
            record: dict[str, Any] = answer.json()
            return record

        big = draw(64)
        assert big["status"] == "failed"
        assert big["output"] is None
        assert big["error"]["source"] == "model"
        assert big["error"]["message"] == (
            "its output file 'red-64.png' could not be stored: file 'red-64.png' of 152 bytes "
            "or more exceeds the limit of 100 bytes (max_file_bytes)"
        )
        assert draw(1)["status"] == "succeeded"
        full = draw(1)
        assert full["status"] == "failed"
        assert full["output"] is None
        assert full["error"]["source"] == "internal"
        assert "'red-1.png' could not be stored: storing 69 bytes" in full["error"]["message"]
        assert "(max_files_bytes)" in full["error"]["message"]
