"""A 429 or 503 is sent again after the server's Retry-After (jitter added, never less), within
the policy's tries and total time; a create only when the server refused it before making a
record; a push's body, read once, never. The clock is the test's: no test waits."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from client_doubles import KINDS, NO_JITTER, Answers, FakeClock, record, refused, run

from foretell.client import ModelNotReady, Overloaded, Retry, Unavailable

OK = httpx.Response(200, json=record("succeeded"))
BUSY = "model 'a/b' is overloaded: 8 predictions already queued; retry later"
NOT_READY = "model 'a/b' is not ready: deployment is deploying"


def ok() -> httpx.Response:
    return httpx.Response(200, json=record("succeeded"))


def created() -> httpx.Response:
    return httpx.Response(201, json=record("starting"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_read_is_sent_again_after_each_retry_after(kind: str) -> None:
    answers = Answers(refused(429, BUSY, "2"), refused(503, NOT_READY, "5"), ok())
    clock = FakeClock()

    got = run(kind, answers, clock, lambda c: c.get_prediction("p1"))

    assert got["status"] == "succeeded"
    assert clock.slept == [2.0, 5.0]
    assert [r.url.path for r in answers.requests] == ["/v1/predictions/p1"] * 3


def test_jitter_adds_up_to_its_share_and_never_takes_any_away() -> None:
    draws = iter([0.0, 0.5, 1.0])
    retry = Retry(jitter=0.2, random=lambda: next(draws))
    answers = Answers(*(refused(429, BUSY, "10") for _ in range(3)), ok())
    clock = FakeClock()

    run("sync", answers, clock, lambda c: c.get_prediction("p1"), retry=retry)

    assert clock.slept == [10.0, 11.0, 12.0]


def test_without_retry_after_the_backoff_doubles() -> None:
    answers = Answers(*(refused(503, NOT_READY) for _ in range(3)), ok())
    clock = FakeClock()

    run("sync", answers, clock, lambda c: c.get_prediction("p1"), retry=NO_JITTER)

    assert clock.slept == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("kind", KINDS)
def test_past_its_tries_the_last_refusal_is_raised(kind: str) -> None:
    answers = Answers(*(refused(429, BUSY, "1") for _ in range(3)))
    clock = FakeClock()
    retry = Retry(attempts=3, random=lambda: 0.0)

    with pytest.raises(Overloaded) as caught:
        run(kind, answers, clock, lambda c: c.get_prediction("p1"), retry=retry)

    assert len(answers.requests) == 3
    assert clock.slept == [1.0, 1.0]
    assert caught.value.retry_after == 1.0


def test_a_wait_that_would_pass_the_total_time_is_not_taken() -> None:
    answers = Answers(
        refused(503, NOT_READY, "20", "model_not_ready"),
        refused(503, NOT_READY, "20", "model_not_ready"),
    )
    clock = FakeClock()
    retry = Retry(total_s=30.0, random=lambda: 0.0)

    with pytest.raises(ModelNotReady):
        run("sync", answers, clock, lambda c: c.get_prediction("p1"), retry=retry)

    assert clock.slept == [20.0]  # a second 20 s would end 40 s after the first try


def test_a_retry_after_longer_than_max_delay_is_raised_at_once() -> None:
    answers = Answers(refused(503, NOT_READY, "120", "model_not_ready"))
    clock = FakeClock()

    with pytest.raises(ModelNotReady) as caught:
        run("sync", answers, clock, lambda c: c.get_prediction("p1"), retry=Retry(max_delay_s=30))

    assert clock.slept == []
    assert caught.value.retry_after == 120.0


def test_one_attempt_never_retries() -> None:
    answers = Answers(refused(429, BUSY, "1"))
    with pytest.raises(Overloaded):
        run("sync", answers, FakeClock(), lambda c: c.get_prediction("p1"), retry=Retry(attempts=1))


@pytest.mark.parametrize("status", [400, 404, 409, 422, 500])
def test_other_errors_are_not_retried(status: int) -> None:
    answers = Answers(refused(status, "no"))
    clock = FakeClock()
    with pytest.raises(Exception):  # noqa: B017, PT011 (its type is test_client_errors')
        run("sync", answers, clock, lambda c: c.cancel_prediction("p1"))

    assert (len(answers.requests), clock.slept) == (1, [])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "refusal",
    [
        (429, BUSY, "1"),
        (429, "API key k1 is over its rate limit of 5 requests/s (bursts of 10)", "1"),
        (429, "owner 'me' already has 100 asynchronous predictions unfinished", "1"),
        (503, NOT_READY, "1"),
        (503, "the server is at its limit of 100 open connections", "1"),
    ],
    ids=["queue full", "rate limited", "owner's limit", "not ready", "connections"],
)
def test_a_create_refused_before_its_record_existed_is_sent_again(
    kind: str, refusal: tuple[int, str, str]
) -> None:
    answers = Answers(refused(*refusal), created())

    got = run(kind, answers, FakeClock(), lambda c: c.create_prediction("a/b", {"n": 1}))

    assert got["id"] == "p1"
    first, second = answers.bodies()
    assert first == second == {"model": "a/b", "input": {"n": 1}}


@pytest.mark.parametrize("kind", KINDS)
def test_a_create_whose_record_may_exist_is_not_sent_again(kind: str) -> None:
    kept = httpx.Response(
        503,
        json={"detail": "the server is stopping before prediction p9 finished", "id": "p9"},
        headers={"Retry-After": "1"},
    )
    store = refused(
        503,
        "the store sqlite:///x is unavailable (disk I/O error); retry",
        "2",
        "store_unavailable",
    )
    for answer in (kept, store):
        answers = Answers(answer)
        with pytest.raises(Unavailable) as caught:
            run(kind, answers, FakeClock(), lambda c: c.create_prediction("a/b", {"n": 1}))
        assert len(answers.requests) == 1
    assert caught.value.retry_after == 2.0


def test_a_push_is_never_sent_again(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"x" * 10)
    answers = Answers(refused(503, "the server is at its limit", "1"))

    with pytest.raises(Unavailable):
        run("sync", answers, FakeClock(), lambda c: c.push("a", "b", archive))

    assert len(answers.requests) == 1


def test_an_upload_is_sent_again_whole(tmp_path: Path) -> None:
    path = tmp_path / "digit.png"
    path.write_bytes(b"\x89PNG-bytes")
    stored = httpx.Response(201, json={"id": "file_1", "name": "digit.png"})
    answers = Answers(refused(503, "request bodies in flight are at the limit", "1"), stored)

    got = run("sync", answers, FakeClock(), lambda c: c.upload(path))

    assert got["id"] == "file_1"
    assert [b"\x89PNG-bytes" in r.content for r in answers.requests] == [True, True]
    assert json.dumps(got)


SSE = {"content-type": "text/event-stream"}
DONE = b'event: status\nid: 0-0-2\ndata: {"status": "processing"}\n\n' + (
    b'event: done\nid: 0-0-4\ndata: {"status": "succeeded"}\n\n'
)


@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_refused_on_opening_is_opened_again_after_its_retry_after(kind: str) -> None:
    streaming = httpx.Response(200, headers={**SSE, "X-Prediction-Id": "p1"}, content=DONE)
    answers = Answers(refused(503, NOT_READY, "4"), streaming)
    clock = FakeClock()

    def events(client: object) -> object:
        stream = client.stream(model="a/b", input={"n": 1})  # type: ignore[attr-defined]
        if kind == "sync":
            return [e.event for e in stream]

        async def collect() -> list[str]:
            return [e.event async for e in stream]

        return collect()

    got = run(kind, answers, clock, events)

    assert got == ["status", "done"]
    assert clock.slept == [4.0]
    assert [r.method for r in answers.requests] == ["POST", "POST"]


def test_a_stream_whose_create_may_have_made_a_record_is_not_opened_again() -> None:
    store = refused(
        503, "the store sqlite:///x is unavailable (locked); retry in 2 s", "2", "store_unavailable"
    )
    answers = Answers(store)

    with pytest.raises(Unavailable):
        run("sync", answers, FakeClock(), lambda c: list(c.stream(model="a/b", input={})))

    assert len(answers.requests) == 1
