"""OIP v2's generate extension against a real `foretell serve` of demo/tiny-gpt2 alone:
`generate` answers the generated text whole, `generate_stream` the same text piece by piece as
SSE `data:` objects (read with httpx-sse), both recorded as predictions; a refused request is a
JSON error before any stream starts."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from _server import Server, build_repository, running_server
from httpx_sse import connect_sse

pytestmark = pytest.mark.slow

GPT2 = "/v2/models/demo/tiny-gpt2"
ASKED = {"text_input": "once upon a time", "parameters": {"max_new_tokens": 48, "stream": True}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("generate")
    repo = build_repository(base, demo=["tiny-gpt2"], fixtures=[])
    with running_server(repo, base / "data") as started:
        yield started


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client(timeout=60.0) as opened:
        yield opened


def streamed(client: httpx.Client, path: str, body: dict[str, object]) -> list[dict[str, object]]:
    with connect_sse(client, "POST", path, json=body) as source:
        assert source.response.status_code == 200, source.response.read()
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [json.loads(event.data) for event in source.iter_sse()]


def test_generate_answers_the_text_whole_and_records_it(client: httpx.Client) -> None:
    response = client.post(f"{GPT2}/generate", json=ASKED)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "demo/tiny-gpt2"
    assert body["model_version"] == "1"
    assert isinstance(body["text_output"], str)
    assert body["text_output"]
    record = client.get(f"/v1/predictions/{body['parameters']['prediction_id']}").json()
    assert record["status"] == "succeeded"
    assert record["input"] == {"prompt": "once upon a time", "max_new_tokens": 48}
    assert record["output"] == body["text_output"]


def test_generate_stream_sends_the_same_text_piece_by_piece(client: httpx.Client) -> None:
    whole = client.post(f"{GPT2}/versions/1/generate", json=ASKED).json()["text_output"]

    chunks = streamed(client, f"{GPT2}/generate_stream", ASKED)

    # Pieces as they came: several tokens' text may share a chunk when the reader is slower
    # than the model, but 48 tokens never all arrive at once.
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.keys() == {"text_output", "model_name", "model_version"}
        assert (chunk["model_name"], chunk["model_version"]) == ("demo/tiny-gpt2", "1")
    assert "".join(str(c["text_output"]) for c in chunks) == whole
    versioned = streamed(client, f"{GPT2}/versions/1/generate_stream", ASKED)
    assert "".join(str(c["text_output"]) for c in versioned) == whole


@pytest.mark.parametrize("route", ["generate", "generate_stream"])
def test_a_refused_request_is_a_json_error_naming_the_field_and_limit(
    client: httpx.Client, route: str
) -> None:
    too_many = {"text_input": "once", "parameters": {"max_new_tokens": 65}}
    response = client.post(f"{GPT2}/{route}", json=too_many)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert "max_new_tokens" in error
    assert "64" in error

    no_text = client.post(f"{GPT2}/{route}", json={"parameters": {"max_new_tokens": 2}})
    assert no_text.status_code == 400, no_text.text
    assert "text_input" in no_text.json()["error"]
    missing = client.post("/v2/models/demo/nope/generate_stream", json=ASKED)
    assert missing.status_code == 404, missing.text
    assert "demo/nope" in missing.json()["error"]
