"""The streaming example, demo/tiny-gpt2, called with curl -N on `foretell serve`: its tokens
come as separate output events whose text together is the record's output. (That the first
event arrives before the last token is made is shown in test_streaming.py with a model the test
holds between tokens: a real generator's pace is not the test's to control.)"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from _server import Server, build_repository, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("tiny_gpt2_stream")
    repo = build_repository(base, demo=["tiny-gpt2"], fixtures=[])
    with running_server(repo, base / "data") as started:
        yield started


def parse(stream: str) -> list[dict[str, str]]:
    """SSE text as events: {"event", "id", "data"} (data lines joined with LF)."""
    events = []
    for block in stream.split("\n\n"):
        if not block.strip() or block.startswith(":"):
            continue
        event: dict[str, str] = {}
        data = []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "data":
                data.append(value)
            else:
                event[field] = value
        events.append({**event, "data": "\n".join(data)})
    return events


def test_curl_gets_the_tokens_as_events_that_make_the_output(server: Server) -> None:
    body = {"model": "demo/tiny-gpt2", "input": {"prompt": "hello", "max_new_tokens": 16}}
    command = [
        "curl", "-N", "-s", "--fail-with-body", "-D", "-", "-H",
        f"Authorization: Bearer {server.admin_key}", "-H", "Accept: text/event-stream",
        "-H", "Content-Type: application/json", "-d", json.dumps(body),
        f"{server.url}/v1/predictions",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)

    head, _, stream = done.stdout.replace("\r\n", "\n").partition("\n\n")
    prediction_id = next(
        line.split(":", 1)[1].strip()
        for line in head.splitlines()
        if line.lower().startswith("x-prediction-id:")
    )
    events = parse(stream)
    output = [e["data"] for e in events if e["event"] == "output"]
    assert len(output) > 1  # token by token, not the whole at the end
    assert events[-1] == {"event": "done", "id": events[-1]["id"], "data": '{"status":"succeeded"}'}
    with server.client() as http:
        record = http.get(f"/v1/predictions/{prediction_id}").json()
    assert record["status"] == "succeeded"
    # SSE carries no CR (api.sse.encode): random weights may well generate one.
    assert "".join(output) == record["output"].replace("\r\n", "\n").replace("\r", "\n")
