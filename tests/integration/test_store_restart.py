"""A bad day: the PostgreSQL server restarts under load. A real `foretell serve` on a server of
the test's own (stopped and started again on its port, as an operator's restart looks to a
client): every request in the outage is answered 503 with Retry-After, none 500 or 401;
everything acknowledged (201, or 200 with a result) is in the database afterwards and finished;
the same server process serves again within seconds of the database's return."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from _server import Server, build_repository, running_server, wait_for

from _postgres import Postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgresql]

ECHO = "fixtures/echo"
SLEEPS = "fixtures/sleeps"
# How long the database stays down: past the service's own retries of a finished record's write
# (0.1 + 0.5 + 2 s), so that both the writes retried into the restart and those that give up
# happen. The wait below is the outage itself, not a wait for something to happen.
OUTAGE_S = 3.0
ACKNOWLEDGED = (200, 201)
TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
# What "serves again within seconds" allows on a busy 2-core machine (measured: well under 1 s).
BACK_WITHIN_S = 10.0
Serve = Callable[..., AbstractContextManager[Server]]


@pytest.fixture(scope="module")
def database_server() -> Iterator[Postgres]:
    """A PostgreSQL server these tests stop and start, so not the session's (about 2 s)."""
    own = Postgres.own()
    yield own
    own.stop()


@pytest.fixture
def database(database_server: Postgres) -> str:
    return database_server.database()


@pytest.fixture
def serve(tmp_path: Path, database: str) -> Serve:
    """`foretell serve` on the test's database; arguments are more of its command line."""
    repo = build_repository(tmp_path, demo=False, fixtures=["echo", "sleeps"])

    def start(*args: str) -> AbstractContextManager[Server]:
        env = {"FORETELL_DB": database}
        return running_server(repo, tmp_path / "data", env=env, args=args)

    return start


@dataclass(frozen=True)
class Answer:
    what: str  # "async", "wait" (Prefer: wait) or a read
    sent: float  # time.monotonic() as the request went
    status: int  # 0: no HTTP answer at all (a timeout, a reset)
    retry_after: str | None
    body: dict[str, Any]


class Load:
    """Threads sending requests back to back until stopped, each answer kept: creates (async
    and Prefer: wait) on the echo model, and reads of what was acknowledged (by id, and lists)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.answers: list[Answer] = []  # list.append is atomic: the threads share it as is
        self._stop = threading.Event()
        kinds = ("async", "async", "wait", "wait", "read")
        self._threads = [threading.Thread(target=self._run, args=(k,)) for k in kinds]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def acknowledged(self, after: float = 0.0) -> list[Answer]:
        return [
            a
            for a in list(self.answers)
            if a.what != "read" and a.status in ACKNOWLEDGED and a.sent >= after
        ]

    def _run(self, what: str) -> None:
        with self.server.client(timeout=30) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                sent = time.monotonic()
                try:
                    response = self._send(client, what, n)
                except httpx.HTTPError as error:
                    self.answers.append(Answer(what, sent, 0, None, {"error": repr(error)}))
                    continue
                body = response.json() if response.content else {}
                retry_after = response.headers.get("retry-after")
                self.answers.append(Answer(what, sent, response.status_code, retry_after, body))

    def _send(self, client: httpx.Client, what: str, n: int) -> httpx.Response:
        if what == "read":
            made = self.acknowledged()
            if n % 2 and made:
                return client.get(f"/v1/predictions/{made[-1].body['id']}")
            return client.get("/v1/predictions", params={"limit": 5})
        headers = {"Prefer": "wait=10"} if what == "wait" else {}
        payload = {"model": ECHO, "input": {"text": f"{what}-{n}"}}
        return client.post("/v1/predictions", json=payload, headers=headers)


def stored(database: str, ids: list[str]) -> dict[str, str]:
    """What the database itself holds of `ids`: id → status."""
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT id, status FROM predictions WHERE id = ANY(%s)", (ids,))
        return {row[0]: row[1] for row in rows}


def test_a_restart_under_load_answers_503_loses_nothing_and_recovers(
    serve: Serve, database_server: Postgres, database: str
) -> None:
    with serve() as server:
        started = time.monotonic()
        with Load(server) as load:
            wait_for(lambda: len(load.acknowledged()) >= 20, timeout=60, what="steady traffic")
            database_server.halt()
            down_at = time.monotonic()
            time.sleep(OUTAGE_S)
            database_server.resume()
            back_at = time.monotonic()
            first = wait_for(
                lambda: min((a.sent for a in load.acknowledged(after=back_at)), default=None),
                timeout=30,
                what="an acknowledged create sent after the restart",
            )
            wait_for(
                lambda: len(load.acknowledged(after=back_at)) >= 20,
                timeout=60,
                what="steady traffic after the restart",
            )
        made = {a.body["id"]: a for a in load.acknowledged()}

        # Everything acknowledged is in the database, finished, by this same process: a record
        # whose end fell in the outage is written once the database is back.
        def all_finished() -> dict[str, str] | None:
            found = stored(database, list(made))
            done = len(found) == len(made) and all(s in TERMINAL for s in found.values())
            return found if done else None

        try:
            found = wait_for(all_finished, timeout=30, what="every acknowledged one, finished")
        except AssertionError:
            found = stored(database, list(made))
            missing = set(made) - set(found)
            unfinished = {i: s for i, s in found.items() if s not in TERMINAL}
            raise AssertionError(
                f"{len(missing)} acknowledged predictions missing from the database, "
                f"{len(unfinished)} unfinished: {unfinished}; log tail:\n{server.log_tail()}"
            ) from None
        assert server.alive()
    answers = load.answers
    print(
        f"{len(answers)} answers in {back_at - started:.1f} s, {len(made)} creates acknowledged, "
        f"{sum(a.status == 503 for a in answers)} answered 503; database down "
        f"{back_at - down_at:.1f} s; creates acknowledged again from "
        f"{first - back_at:.2f} s after it was back"
    )
    unexpected = [a for a in answers if a.status not in (200, 201, 503)]
    assert not unexpected, unexpected[:5]
    refused = [a for a in answers if a.status == 503]
    assert refused, "nothing was refused: the outage was never felt"
    for answer in refused:
        assert answer.retry_after is not None, answer
        assert answer.retry_after.isdigit(), answer
        assert "is unavailable" in answer.body["detail"], answer
        assert "postgresql://postgres@127.0.0.1:" in answer.body["detail"], answer
    assert {a.status for a in answers if a.what == "read"} == {200, 503}
    assert first - back_at < BACK_WITHIN_S
    assert set(found.values()) == {"succeeded"}


def test_an_outcome_reached_in_the_outage_is_stored_once_the_database_is_back(
    serve: Serve, database_server: Postgres, database: str
) -> None:
    """A prediction acknowledged before the outage ends in it: its record's write runs out of
    tries, its readers are told 503 meanwhile (never a 500, nor left waiting for the outage),
    and the outcome is written as soon as the database is back. Without keys, so that the 503
    is the record's, not the key lookup's."""
    with serve("--no-auth") as server, httpx.Client(base_url=server.url) as client:
        created = client.post("/v1/predictions", json={"model": SLEEPS, "input": {"seconds": 1}})
        assert created.status_code == 201, created.text
        prediction_id = created.json()["id"]
        url = f"/v1/predictions/{prediction_id}"
        wait_for(
            lambda: client.get(url).json()["status"] == "processing",
            timeout=30,
            what="the prediction to start",
        )
        database_server.halt()
        seen: list[tuple[int, str]] = []

        def refused() -> httpx.Response | None:
            response = client.get(url, timeout=30)
            seen.append((response.status_code, response.json().get("status", "")))
            return response if response.status_code != 200 else None

        answer = wait_for(refused, timeout=60, what="the record's write to give up its tries")
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "2"
        assert "is unavailable" in answer.json()["detail"]
        assert set(seen[:-1]) <= {(200, "processing")}, seen
        assert f"storing prediction {prediction_id} failed 4 times" in server.log()
        database_server.resume()
        back_at = time.monotonic()

        def answered() -> dict[str, Any] | None:
            response = client.get(url)
            assert response.status_code in (200, 503), response.text
            body: dict[str, Any] = response.json()
            return body if response.status_code == 200 else None

        record = wait_for(answered, timeout=30, what="the outcome, once the database is back")
        took = time.monotonic() - back_at
        assert record["status"] == "succeeded", record
        assert record["output"] == 1
        assert took < BACK_WITHIN_S, took
        assert stored(database, [prediction_id]) == {prediction_id: "succeeded"}
