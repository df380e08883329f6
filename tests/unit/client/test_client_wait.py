"""wait(), predict() and list paging: each GET held by the server (Prefer: wait=N, N what is
left of the timeout; bare where there is none or the server's max is shorter), asked again at
once after a held answer, every `poll` seconds where the server did not hold it; WaitTimedOut
with the record as it stood. The clock is the test's."""

from __future__ import annotations

import httpx
import pytest
from client_doubles import KINDS, Answers, FakeClock, record, refused, run

from foretell.client import Client, WaitTimedOut

HELD = {"Preference-Applied": "wait=60"}


def held(status: str) -> httpx.Response:
    return httpx.Response(200, json=record(status), headers=HELD)


def plain(status: str) -> httpx.Response:
    return httpx.Response(200, json=record(status))


@pytest.mark.parametrize("kind", KINDS)
def test_wait_asks_the_server_to_hold_each_get_until_it_ends(kind: str) -> None:
    answers = Answers(held("processing"), held("processing"), held("succeeded"))
    clock = FakeClock()

    got = run(kind, answers, clock, lambda c: c.wait({"id": "p1", "status": "starting"}))

    assert got["status"] == "succeeded"
    assert [r.headers["Prefer"] for r in answers.requests] == ["wait"] * 3
    assert [r.url.path for r in answers.requests] == ["/v1/predictions/p1"] * 3
    assert clock.slept == []  # the server did the waiting


def test_with_a_timeout_each_hold_is_what_is_left_of_it_up_to_60_s() -> None:
    clock = FakeClock()

    class Slow(Answers):  # each held answer takes the time the server held it
        def __call__(self, request: httpx.Request) -> httpx.Response:
            clock.time += int(request.headers["Prefer"].removeprefix("wait="))
            return super().__call__(request)

    answers = Slow(held("processing"), held("succeeded"))
    got = run("sync", answers, clock, lambda c: c.wait("p1", timeout=90.5))

    assert [r.headers["Prefer"] for r in answers.requests] == ["wait=60", "wait=31"]
    assert got["status"] == "succeeded"  # ended as the timeout ran out: the end wins


@pytest.mark.parametrize("kind", KINDS)
def test_past_its_timeout_wait_raises_with_the_record_as_it_stood(kind: str) -> None:
    clock = FakeClock()
    answers = Answers(plain("processing"), plain("processing"), plain("processing"))

    with pytest.raises(WaitTimedOut) as caught:
        run(kind, answers, clock, lambda c: c.wait("p1", timeout=2.0, poll=1.5))

    assert caught.value.prediction == record("processing")
    assert isinstance(caught.value, TimeoutError)
    assert "p1 is still processing after 2 s" in caught.value.message
    assert clock.slept == [1.5, 0.5]  # the last pause only up to the deadline


@pytest.mark.parametrize("kind", KINDS)
def test_a_server_that_does_not_hold_the_get_is_polled(kind: str) -> None:
    answers = Answers(plain("pending"), plain("processing"), plain("failed"))
    clock = FakeClock()

    got = run(kind, answers, clock, lambda c: c.wait("p1", poll=0.25))

    assert got["status"] == "failed"
    assert clock.slept == [0.25, 0.25]


def test_a_server_whose_max_wait_is_shorter_is_asked_with_a_bare_prefer() -> None:
    too_long = refused(400, "Prefer: wait=30 is out of range; wait must be from 1 to 10")
    answers = Answers(too_long, held("succeeded"))

    run("sync", answers, FakeClock(), lambda c: c.wait("p1", timeout=30))

    assert [r.headers["Prefer"] for r in answers.requests] == ["wait=30", "wait"]


def test_a_server_that_refuses_any_prefer_is_polled_without() -> None:
    answers = Answers(
        refused(400, "Prefer: wait=5 is not accepted"),
        refused(400, "Prefer: wait is not accepted"),
        plain("succeeded"),
    )

    run("sync", answers, FakeClock(), lambda c: c.wait("p1", timeout=5))

    assert [r.headers.get("Prefer") for r in answers.requests] == ["wait=5", "wait", None]


@pytest.mark.parametrize("kind", KINDS)
def test_predict_holds_the_create_then_waits_for_the_rest(kind: str) -> None:
    created = httpx.Response(201, json=record("processing"), headers=HELD)
    answers = Answers(created, held("succeeded"))

    got = run(kind, answers, FakeClock(), lambda c: c.predict("a/b", {"n": 1}))

    assert got["status"] == "succeeded"
    create, get = answers.requests
    assert (create.method, create.headers["Prefer"]) == ("POST", "wait")
    assert (get.method, get.url.path) == ("GET", "/v1/predictions/p1")


def test_predict_that_ends_on_its_create_makes_no_other_request() -> None:
    answers = Answers(httpx.Response(201, json=record("succeeded", output=3)))

    got = run("sync", answers, FakeClock(), lambda c: c.predict("a/b", {"n": 1}, timeout=5))

    assert got["output"] == 3
    assert answers.requests[0].headers["Prefer"] == "wait=5"


def test_predict_with_validate_input_says_so() -> None:
    answers = Answers(httpx.Response(201, json=record("succeeded")))

    run("sync", answers, FakeClock(), lambda c: c.predict("a/b", {}, validate_input=True))

    assert answers.requests[0].headers["Validate-Input"] == "true"


@pytest.mark.parametrize("kind", KINDS)
def test_list_filters_and_follows_next_pages(kind: str) -> None:
    first = {"results": [record("succeeded", "p3"), record("failed", "p2")], "next": None}
    first["next"] = "http://t/v1/predictions?model=a%2Fb&limit=2&cursor=c-2"
    last = {"results": [record("succeeded", "p1")], "next": None}
    answers = Answers(httpx.Response(200, json=first), httpx.Response(200, json=last))

    async def collect(client: object) -> list[str]:
        return [p["id"] async for p in client.iter_predictions(model="a/b", page_size=2)]  # type: ignore[attr-defined]

    def collect_sync(client: object) -> list[str]:
        return [p["id"] for p in client.iter_predictions(model="a/b", page_size=2)]  # type: ignore[attr-defined]

    got = run(kind, answers, FakeClock(), collect_sync if kind == "sync" else collect)

    assert got == ["p3", "p2", "p1"]
    params = [dict(r.url.params) for r in answers.requests]
    assert params == [
        {"model": "a/b", "limit": "2"},
        {"model": "a/b", "limit": "2", "cursor": "c-2"},
    ]


def test_one_page_with_a_status_filter_then_the_next_from_its_url() -> None:
    answers = Answers(*(httpx.Response(200, json={"results": [], "next": None}) for _ in "ab"))
    after = "http://t/v1/predictions?status=failed&limit=5&cursor=c-9"

    def pages(client: Client) -> None:
        client.list_predictions(status="failed", limit=5)
        client.list_predictions(status="failed", limit=5, cursor=after)

    run("sync", answers, FakeClock(), pages)

    first, second = (dict(r.url.params) for r in answers.requests)
    assert first == {"status": "failed", "limit": "5"}
    assert second == {"status": "failed", "limit": "5", "cursor": "c-9"}
