"""SIGTERM with callers waiting on predictions (`Prefer: wait`, the dialects' synchronous
routes): each is answered in JSON before its connection closes, and running predictions are
stopped at shutdown_grace_s.

It was: uvicorn waited for the open connections before it ran the app's shutdown, which is what
answers them, so after 15 s each got a plain-text 500 with no id, while a prediction went on to
succeed 23.5 s after the signal, past the 10 s grace. Now one that finishes within the grace
gets its record; one still queued is put back to pending at once and its caller gets a 503 with
Retry-After naming it; one still running at the end of the grace is stopped, put back, and its
caller gets the same; the next start runs what was kept."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server import Server, build_repository, running_server, sigterm, wait_for

pytestmark = pytest.mark.slow

SLEEPS = "fixtures/sleeps"  # one replica: a long sleep holds it, the rest queue behind
SHORT = "fixtures/sleeps-reporting-pid"  # its own replica: runs beside the long one
GRACE_S = 6.0
SHORT_S = 1.0  # well within the grace
LONG_S = 30.0  # the most fixtures/sleeps takes: far past the grace
RETRY_AFTER = "5"  # service.predictions.STOPPING_RETRY_AFTER_S
# The grace, then Replica.stop's 5 s for the replica busy with the stopped sleep, plus slack for
# a busy machine; still short of the 30 s sleep that a stop waiting for it would take.
EXIT_WITHIN_S = GRACE_S + 12.0
REQUEUED = "re-queued: the server shut down while this prediction was processing"
Serve = Callable[[], AbstractContextManager[Server]]


@dataclass
class Answer:
    response: httpx.Response
    after_signal_s: float  # when it came, counted from the SIGTERM


def metric(client: httpx.Client, name: str, model: str) -> float:
    text = client.get("/metrics").text
    found = re.search(rf'^{name}\{{model="{re.escape(model)}:1"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def started(client: httpx.Client, model: str) -> float:
    """How many of `model`'s predictions have started on a replica."""
    return metric(client, "foretell_queue_seconds_count", model)


@pytest.fixture
def server(tmp_path: Path) -> Serve:
    repo = build_repository(tmp_path, demo=False, fixtures=["sleeps", "sleeps-reporting-pid"])
    env = {"FORETELL_SHUTDOWN_GRACE_S": str(GRACE_S)}
    return lambda: running_server(repo, tmp_path / "data", env=env)


@pytest.mark.parametrize(
    "group",
    [
        pytest.param(True, id="process-group"),  # systemd, Ctrl-C: the replicas get it too
        pytest.param(False, id="server-only"),  # docker stop, kill <pid>
    ],
)
def test_every_waiting_caller_gets_json_and_running_work_stops_at_the_grace(
    server: Serve, group: bool
) -> None:
    calls: dict[str, Future[Answer]] = {}
    with server() as running, ThreadPoolExecutor(8) as pool:
        signaled: list[float] = []

        def call(method: str, path: str, body: Any, **headers: str) -> Answer:
            with running.client(timeout=90) as http:
                response = http.request(method, path, json=body, headers=headers)
            return Answer(response, time.monotonic() - signaled[0])

        def native(model: str, seconds: float) -> Answer:
            body = {"model": model, "input": {"seconds": seconds}}
            return call("POST", "/v1/predictions", body, Prefer="wait=60")

        with running.client() as client:
            calls["long"] = pool.submit(native, SLEEPS, LONG_S)
            wait_for(lambda: started(client, SLEEPS) >= 1, timeout=30, what="the long sleep")
            calls["queued"] = pool.submit(native, SLEEPS, SHORT_S)
            calls["slashml"] = pool.submit(
                call,
                "POST",
                "/model-deployment/v1/models/fixtures%2Fsleeps/predict",
                {"model_input": {"seconds": SHORT_S}},
            )
            calls["oip"] = pool.submit(
                call,
                "POST",
                "/v2/models/fixtures/sleeps/infer",
                {"inputs": [{"name": "seconds", "shape": [1], "datatype": "FP64", "data": [1]}]},
            )
            # Baseten's route keeps no record: its prediction is stopped, not put back.
            calls["baseten"] = pool.submit(
                call, "POST", "/model/fixtures-sleeps/production/predict", {"seconds": SHORT_S}
            )
            wait_for(
                lambda: metric(client, "foretell_queue_depth", SLEEPS) >= 4,
                timeout=30,
                what="four predictions queued behind the long one",
            )
            calls["short"] = pool.submit(native, SHORT, SHORT_S)
            wait_for(lambda: started(client, SHORT) >= 1, timeout=30, what="the short sleep")

        signaled.append(time.monotonic())
        sigterm(running, group=group)
        exited_s = time.monotonic() - signaled[0]
        answers = {name: future.result(timeout=30) for name, future in calls.items()}

    assert "Application shutdown complete" in running.log(), running.log_tail()
    assert exited_s < EXIT_WITHIN_S, f"the server took {exited_s:.1f} s to stop"
    for name, answer in answers.items():
        assert answer.response.headers["content-type"] == "application/json", (name, answer)

    short = answers["short"].response
    assert short.status_code == 201, short.text
    assert short.json()["status"] == "succeeded"

    stopped = {}
    for name in ("long", "queued", "slashml", "oip"):
        response = answers[name].response
        assert response.status_code == 503, (name, response.text)
        assert response.headers["Retry-After"] == RETRY_AFTER, name
        said = re.search(r"before prediction (\S+) finished; it is back to pending", response.text)
        assert said, (name, response.text)
        stopped[name] = said.group(1)
    # Native answers with the record's id, as a create does, to GET it by later.
    for name in ("long", "queued"):
        body = answers[name].response.json()
        assert body["id"] == stopped[name]
        assert body["urls"] == {"get": f"/v1/predictions/{stopped[name]}"}
    baseten = answers["baseten"].response
    assert baseten.status_code == 503, baseten.text
    assert baseten.headers["Retry-After"] == RETRY_AFTER
    assert re.fullmatch(
        r'\{"error":"the server is stopping before prediction \S+ finished; it was stopped and '
        r'not kept; try again in 5 s"\}',
        baseten.text,
    ), baseten.text
    # Queued ones at once; the long one when the grace ran out, not when its sleep would end.
    for name in ("queued", "slashml", "oip", "baseten"):
        assert answers[name].after_signal_s < GRACE_S, (name, answers[name].after_signal_s)
    assert GRACE_S - 1 <= answers["long"].after_signal_s < GRACE_S + 4, answers["long"]

    with server() as again, again.client() as client:
        long_one = client.get(f"/v1/predictions/{stopped['long']}").json()
        assert long_one["status"] in ("pending", "processing"), long_one
        assert REQUEUED in long_one["logs"]
        assert client.post(f"/v1/predictions/{stopped['long']}/cancel").status_code == 200

        def finished() -> dict[str, Any] | None:
            records = {n: client.get(f"/v1/predictions/{stopped[n]}").json() for n in stopped}
            done = all(r["status"] in ("succeeded", "canceled") for r in records.values())
            return records if done else None

        records = wait_for(finished, timeout=60, what="the kept predictions to run")
        statuses = {name: record["status"] for name, record in records.items()}
        assert statuses == {
            "long": "canceled",
            "queued": "succeeded",
            "slashml": "succeeded",
            "oip": "succeeded",
        }
