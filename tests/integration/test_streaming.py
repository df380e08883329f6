"""Issue 19's done-when, against one real `foretell serve`: a prediction's events over SSE as its
model makes them (curl -N), resumed exactly with Last-Event-ID after a dropped connection or after
the end, logs in the record while it runs, `"stream": true` on create, and the refusals.

The models live in the test's repository. `streams/gated` yields its tokens one by one, each after
the test opens its gate (a file), so "the first token arrived before the last was made" is a fact
of the test's own order, never a timing threshold."""

from __future__ import annotations

import itertools
import json
import queue
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server import Server, build_repository, running_server, wait_for
from httpx_sse import ServerSentEvent, connect_sse
from typer.testing import CliRunner

from foretell.cli.main import app
from foretell.client import Client

pytestmark = pytest.mark.slow

WAIT_S = 60.0  # for what a busy machine may take long to do; nothing waits this out when well

GATED = '''
"""Yields `n` tokens; each after the first waits for its gate, a file named for its index."""

import time
from collections.abc import Iterator
from pathlib import Path

from foretell.sdk import Input, Predictor


def wait_gate(gate: Path) -> None:
    deadline = time.monotonic() + 120
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} never opened")
        time.sleep(0.01)


class Gated(Predictor):
    def predict(
        self,
        gates: str = Input(description="folder of the gate files"),
        n: int = Input(default=3, ge=1, le=100),
        fail: bool = Input(default=False, description="raise after the last token"),
    ) -> Iterator[str]:
        for i in range(n):
            if i:
                wait_gate(Path(gates) / str(i))
            yield f"token{i} "
        if fail:
            raise RuntimeError("failed after its tokens")
'''

PRINTS = '''
"""Prints a line every 100 ms, then waits for its gate before it returns."""

import time
from pathlib import Path

from foretell.sdk import Input, Predictor


class Prints(Predictor):
    def predict(self, gate: str = Input(), lines: int = Input(default=5, ge=1, le=50)) -> int:
        for i in range(lines):
            print(f"line {i}", flush=True)
            time.sleep(0.1)
        deadline = time.monotonic() + 120
        while not Path(gate).exists():
            if time.monotonic() > deadline:
                raise TimeoutError("gate never opened")
            time.sleep(0.01)
        return lines
'''


BIG = '''
"""Yields `n` pieces of 50,000 characters as fast as it can."""

from collections.abc import Iterator

from foretell.sdk import Input, Predictor


class Big(Predictor):
    def predict(self, n: int = Input(default=200, ge=1, le=1000)) -> Iterator[str]:
        for _ in range(n):
            yield "x" * 50_000
'''
STALL_S = 2  # the server's stream_stall_s: a reader taking nothing this long is cut


def python_model(root: Path, ref: str, source: str, predictor: str) -> None:
    folder = root / ref / "1"
    folder.mkdir(parents=True)
    (folder / "predict.py").write_text(source)
    (folder / "foretell.yaml").write_text(
        f"runtime: python\npredictor: predict.py:{predictor}\ndescription: {ref}, for streams\n"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("streaming")
    repo = build_repository(root, demo=False, fixtures=["echo"])
    python_model(repo, "streams/gated", GATED, "Gated")
    python_model(repo, "streams/prints", PRINTS, "Prints")
    python_model(repo, "streams/big", BIG, "Big")
    stall = {"FORETELL_STREAM_STALL_S": str(STALL_S)}
    with running_server(repo, root / "data", env=stall) as server:
        yield server


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client(timeout=WAIT_S) as client:
        yield client


@pytest.fixture
def gates(tmp_path: Path) -> Path:
    folder = tmp_path / "gates"
    folder.mkdir()
    return folder


def open_gates(gates: Path, *indexes: int) -> None:
    for i in indexes:
        (gates / str(i)).touch()


def position(event_id: str) -> tuple[int, int, int]:
    output, logs, status = (int(part) for part in event_id.split("-"))
    return output, logs, status


def ended(http: httpx.Client, prediction_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        record: dict[str, Any] = http.get(f"/v1/predictions/{prediction_id}").json()
        return record if record["status"] in ("succeeded", "failed", "canceled") else None

    return wait_for(check, timeout=WAIT_S, what=f"prediction {prediction_id} to end")


def read_until(source: Iterator[ServerSentEvent], last: str) -> list[ServerSentEvent]:
    """Events until (and with) the first named `last`."""
    events = []
    for sse in source:
        events.append(sse)
        if sse.event == last:
            break
    return events


def outputs(events: list[ServerSentEvent]) -> str:
    return "".join(e.data for e in events if e.event == "output")


class Lines:
    """A process's stdout read on a thread, line by line, each waited for with a timeout."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.lines: queue.Queue[bytes] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout
        threading.Thread(target=lambda: [self.lines.put(x) for x in stdout], daemon=True).start()

    def until(self, wanted: bytes) -> list[bytes]:
        seen = []
        while (line := self.lines.get(timeout=WAIT_S)) != wanted:
            seen.append(line)
        return [*seen, line]


def test_curl_gets_the_first_token_before_the_model_made_the_last(
    server: Server, http: httpx.Client, gates: Path
) -> None:
    body = {"model": "streams/gated", "input": {"gates": str(gates), "n": 3}, "stream": True}
    command = [
        "curl", "-N", "-s", "-i", "-H", f"Authorization: Bearer {server.admin_key}",
        "-H", "Content-Type: application/json", "-d", json.dumps(body),
        f"{server.url}/v1/predictions",
    ]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE) as curl:
        lines = Lines(curl)
        head = lines.until(b"\r\n")
        first = lines.until(b"event: output\n") + lines.until(b"\n")
        # The model waits at gate 1 for its second token: none of the rest is made yet.
        prediction_id = next(
            h.split(b":")[1].strip().decode()
            for h in head
            if h.lower().startswith(b"x-prediction-id")
        )
        running = http.get(f"/v1/predictions/{prediction_id}").json()
        assert running["status"] == "processing"
        assert b"data: token0 \n" in first

        open_gates(gates, 1, 2)
        rest = lines.until(b"event: done\n") + lines.until(b"\n")
        assert curl.wait(WAIT_S) == 0

    assert head[0].startswith(b"HTTP/1.1 200")
    assert b"content-type: text/event-stream\r\n" in [h.lower() for h in head]
    data = [line[6:-1].decode() for line in first + rest if line.startswith(b"data: ")]
    assert "".join(d for d in data if d.startswith("token")) == "token0 token1 token2 "
    assert ended(http, prediction_id)["output"] == "token0 token1 token2 "


def test_a_dropped_stream_resumed_with_last_event_id_misses_and_repeats_nothing(
    http: httpx.Client, gates: Path
) -> None:
    body = {"model": "streams/gated", "input": {"gates": str(gates), "n": 4}}
    prediction_id = http.post("/v1/predictions", json=body).json()["id"]
    path = f"/v1/predictions/{prediction_id}/stream"

    with connect_sse(http, "GET", path) as source:
        first = read_until(source.iter_sse(), "output")  # then the connection is dropped mid-stream
    assert outputs(first) == "token0 "
    open_gates(gates, 1)  # token1 is made while nobody reads
    resume = {"Last-Event-ID": first[-1].id}
    with connect_sse(http, "GET", path, headers=resume) as source:
        events = source.iter_sse()
        second = read_until(events, "output")
        open_gates(gates, 2, 3)
        second += read_until(events, "done")

    record = ended(http, prediction_id)
    assert record["status"] == "succeeded"
    assert outputs(first) + outputs(second) == record["output"] == "token0 token1 token2 token3 "
    ids = [position(e.id) for e in first + second]
    assert len(set(ids)) == len(ids)  # none sent twice
    for before, after in itertools.pairwise(ids):  # each a step forward
        assert all(a >= b for a, b in zip(after, before, strict=True))
        assert after != before

    # After the end, the same Last-Event-ID replays the rest from the record (in one output
    # event: what one look at the record finds), up to the same last position.
    with connect_sse(http, "GET", path, headers=resume) as source:
        replayed = list(source.iter_sse())
    assert [e.event for e in replayed] == ["output", "done"]
    assert outputs(replayed) == outputs(second)
    assert replayed[-1].id == second[-1].id
    # And from the end's own id, nothing is left to send.
    with connect_sse(http, "GET", path, headers={"Last-Event-ID": second[-1].id}) as source:
        assert list(source.iter_sse()) == []


def test_a_failing_stream_keeps_its_output_and_ends_with_error_then_done(
    http: httpx.Client, gates: Path
) -> None:
    open_gates(gates, 1)
    body = {"model": "streams/gated", "input": {"gates": str(gates), "n": 2, "fail": True}}
    with connect_sse(http, "POST", "/v1/predictions", json={**body, "stream": True}) as source:
        events = list(source.iter_sse())
        prediction_id = source.response.headers["X-Prediction-Id"]

    assert [e.event for e in events][-2:] == ["error", "done"]
    error = json.loads(events[-2].data)
    assert error["status"] == "failed"
    assert "failed after its tokens" in error["error"]["message"]
    assert json.loads(events[-1].data) == {"status": "failed"}
    assert outputs(events) == "token0 token1 " == ended(http, prediction_id)["output"]


def test_a_model_printing_every_100_ms_shows_its_lines_in_the_record_while_it_runs(
    http: httpx.Client, gates: Path
) -> None:
    gate = gates / "done"
    body = {"model": "streams/prints", "input": {"gate": str(gate), "lines": 5}}
    prediction_id = http.post("/v1/predictions", json=body).json()["id"]

    def printed() -> dict[str, Any] | None:
        record: dict[str, Any] = http.get(f"/v1/predictions/{prediction_id}").json()
        return record if "line 4" in (record["logs"] or "") else None

    running = wait_for(printed, timeout=WAIT_S, what="the model's lines in its record")
    assert running["status"] == "processing"  # it waits for the gate: still running
    assert running["logs"].splitlines()[-5:] == [f"line {i}" for i in range(5)]
    gate.touch()
    record = ended(http, prediction_id)
    assert (record["status"], record["output"]) == ("succeeded", 5)
    assert "line 0\nline 1\nline 2\nline 3\nline 4\n" in record["logs"]


def test_stream_true_on_create_answers_the_events_of_the_prediction_it_made(
    http: httpx.Client, gates: Path
) -> None:
    open_gates(gates, 1, 2)
    body = {"model": "streams/gated", "input": {"gates": str(gates)}, "stream": True}
    with connect_sse(http, "POST", "/v1/predictions", json=body) as source:
        response = source.response
        events = list(source.iter_sse())

    assert response.status_code == 200
    prediction_id = response.headers["X-Prediction-Id"]
    assert response.headers["Location"] == f"/v1/predictions/{prediction_id}"
    assert response.headers["Cache-Control"] == "no-cache"
    assert [e.event for e in events if e.event != "output"][-1] == "done"
    assert json.loads(events[-1].data) == {"status": "succeeded"}
    record = ended(http, prediction_id)
    assert outputs(events) == record["output"] == "token0 token1 token2 "
    assert record["urls"]["stream"] == f"/v1/predictions/{prediction_id}/stream"


def test_accept_event_stream_on_a_model_that_does_not_stream_gives_one_output_event(
    http: httpx.Client,
) -> None:
    body = {"model": "fixtures/echo", "input": {"text": "hi", "n": 2}}
    # connect_sse asks with Accept: text/event-stream, and the body has no "stream"
    with connect_sse(http, "POST", "/v1/predictions", json=body) as source:
        assert source.response.status_code == 200
        events = list(source.iter_sse())

    output = [e for e in events if e.event == "output"]
    assert len(output) == 1
    assert json.loads(output[0].data) == {"text": "hi", "n": 2}
    assert events[-1].event == "done"


def test_a_last_event_id_that_is_no_position_is_400_naming_the_header(
    http: httpx.Client, gates: Path
) -> None:
    open_gates(gates, 1, 2)
    body = {"model": "streams/gated", "input": {"gates": str(gates)}}
    prediction_id = http.post("/v1/predictions", json=body, headers={"Prefer": "wait=30"}).json()[
        "id"
    ]

    answer = http.get(f"/v1/predictions/{prediction_id}/stream", headers={"Last-Event-ID": "nope"})

    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert "Last-Event-ID" in answer.json()["detail"]


def test_the_stream_of_an_unknown_prediction_is_404_in_json(http: httpx.Client) -> None:
    answer = http.get("/v1/predictions/nope/stream")

    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["detail"] == "prediction 'nope' not found"  # not a missing route's


def test_the_client_and_the_cli_stream_a_prediction(server: Server, gates: Path) -> None:
    open_gates(gates, 1, 2)
    given = {"gates": str(gates)}
    with Client(server.url, token=server.admin_key) as client:
        events = list(client.stream(model="streams/gated", input=given))
    assert "".join(e.data for e in events if e.event == "output") == "token0 token1 token2 "

    env = {"FORETELL_URL": server.url, "FORETELL_API_KEY": server.admin_key}
    predicted = CliRunner().invoke(
        app, ["predict", "streams/gated", "-i", f"gates={gates}", "--stream"], env=env
    )
    assert predicted.exit_code == 0, predicted.output
    assert predicted.stdout == "token0 token1 token2 \n"
    prediction_id = newest(server)  # the CLI's
    followed = CliRunner().invoke(app, ["predictions", "follow", prediction_id], env=env)
    assert followed.exit_code == 0, followed.output
    assert followed.stdout == "token0 token1 token2 \n"


def newest(server: Server) -> str:
    """The id of the newest prediction."""
    with server.client() as http:
        found: str = http.get("/v1/predictions", params={"limit": 1}).json()["results"][0]["id"]
        return found


@pytest.mark.parametrize("route", ["POST stream", "GET stream"])
def test_a_reader_that_takes_nothing_is_cut_and_the_prediction_runs_on(
    server: Server, http: httpx.Client, route: str
) -> None:
    """On both the fast lane (the create) and FastAPI's (the GET), its connection is closed."""
    body = json.dumps({"model": "streams/big", "input": {"n": 200}, "stream": True}).encode()
    auth = f"Authorization: Bearer {server.admin_key}\r\n"
    if route == "POST stream":
        request = (
            "POST /v1/predictions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"{auth}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
    else:
        made = http.post("/v1/predictions", json={"model": "streams/big", "input": {"n": 200}})
        request = f"GET {made.json()['urls']['stream']} HTTP/1.1\r\nHost: test\r\n{auth}\r\n"
        request = request.encode()
    cuts = server.log().count("reader stalled")
    with socket.socket() as reader:
        # 10 MB of output against a receive buffer of a few KB: the server's sends stop.
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.connect(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
        reader.sendall(request)
        wait_for(
            lambda: server.log().count("reader stalled") > cuts, timeout=WAIT_S, what="the cut"
        )
        reader.settimeout(WAIT_S)
        received = b""
        while chunk := reader.recv(1 << 20):  # what was buffered, then the server's close
            received += chunk

    assert received.startswith(b"HTTP/1.1 200")
    assert len(received) < 200 * 50_000  # cut short
    assert "ASGI callable returned" not in server.log()  # closed, not given up on
    if route == "POST stream":
        found = re.search(rb"x-prediction-id: (\S+)", received, re.IGNORECASE)
        assert found is not None
        prediction_id = found.group(1).decode()
    else:
        prediction_id = made.json()["id"]
    record = ended(http, prediction_id)
    assert record["status"] == "succeeded"
    assert len(record["output"]) == 200 * 50_000
