"""Leases on predictions: claimed on insert, renewed, taken only once expired, and an update of a
record another process took lands nowhere; on both databases, with processes played by stores."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from _databases import backend, execute
from foretell.domain import OutboxEvent, Prediction, PredictionStatus
from foretell.store import ClaimLost, PredictionStore
from foretell.store.notify import CANCEL, DONE

MakePrediction = Callable[..., Prediction]
PAST = "2000-01-01 00:00:00.000000"


def _claims(db_url: str) -> dict[str, tuple[str | None, datetime | None]]:
    """Each record's (claimed_by, lease_until), lease_until as an aware UTC datetime."""
    rows = execute(db_url, "SELECT id, claimed_by, lease_until FROM predictions")
    return {id: (holder, _utc(until)) for id, holder, until in rows}


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite's text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _db_now(db_url: str) -> datetime:
    sql = "SELECT now()" if backend(db_url) == "postgresql" else "SELECT datetime('now')"
    found = _utc(execute(db_url, sql)[0][0])
    assert found is not None
    return found


def _expire(db_url: str, *ids: str) -> None:
    """As if their holder stopped renewing long ago."""
    for id in ids:
        execute(db_url, f"UPDATE predictions SET lease_until = '{PAST}' WHERE id = :id", id=id)


async def _open(db_url: str, lease_s: float = 15.0) -> PredictionStore:
    return await PredictionStore.open(db_url, lease_s=lease_s)


def test_an_unfinished_insert_is_claimed_until_the_databases_now_plus_the_lease(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> str:
        store = await _open(db_url, lease_s=30)
        try:
            await store.insert(make_prediction("pending"))
            ended = make_prediction("ended", status=PredictionStatus.SUCCEEDED)
            await store.insert(ended)
            return store.instance
        finally:
            await store.close()

    before = _db_now(db_url)
    instance = asyncio.run(scenario())
    after = _db_now(db_url)
    claims = _claims(db_url)
    holder, until = claims["pending"]
    assert holder == instance
    assert until is not None
    slack = timedelta(seconds=1)  # SQLite's 'now' has milliseconds, datetime('now') seconds
    assert before + timedelta(seconds=30) - slack <= until <= after + timedelta(seconds=30) + slack
    assert claims["ended"] == (None, None)


def test_renew_extends_only_this_processs_own_unfinished_claims(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> tuple[int, int]:
        a, b = await _open(db_url), await _open(db_url)
        try:
            await a.insert(make_prediction("mine"))
            await b.insert(make_prediction("theirs"))
            _expire(db_url, "mine", "theirs")
            renewed = await a.leases.renew(["mine", "theirs", "unknown"])
            return renewed, await a.leases.renew([])
        finally:
            await a.close()
            await b.close()

    renewed, nothing = asyncio.run(scenario())
    assert (renewed, nothing) == (1, 0)
    claims = _claims(db_url)
    now = _db_now(db_url)
    mine_until, theirs_until = claims["mine"][1], claims["theirs"][1]
    assert mine_until is not None
    assert mine_until > now + timedelta(seconds=10)
    assert theirs_until == _utc(PAST)


def test_only_expired_or_unclaimed_work_is_taken_oldest_first(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> tuple[list[Prediction], list[Prediction], str]:
        a, b = await _open(db_url), await _open(db_url)
        try:
            for i, id in enumerate(("live", "expired", "unclaimed", "processing", "ended")):
                status = PredictionStatus(id if id == "processing" else "pending")
                await a.insert(make_prediction(id, offset_s=i, status=status))
            ended = make_prediction("ended", offset_s=4, status=PredictionStatus.SUCCEEDED)
            await a.update(ended)
            _expire(db_url, "expired", "processing")
            execute(db_url, "UPDATE predictions SET claimed_by = NULL WHERE id = 'unclaimed'")
            taken = await b.leases.claim_expired(limit=100)
            again = await b.leases.claim_expired(limit=100)
            return taken, again, b.instance
        finally:
            await a.close()
            await b.close()

    taken, again, b_instance = asyncio.run(scenario())
    assert [p.id for p in taken] == ["expired", "unclaimed", "processing"]
    assert taken[2].status is PredictionStatus.PROCESSING
    assert again == []  # B's claims are live now
    claims = _claims(db_url)
    assert {id for id, (holder, _) in claims.items() if holder == b_instance} == {
        "expired",
        "unclaimed",
        "processing",
    }
    assert claims["ended"] == (None, None)


def test_claim_takes_one_prediction_only_once_its_lease_expired(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> tuple[Prediction | None, Prediction | None, Prediction | None]:
        a, b = await _open(db_url), await _open(db_url)
        try:
            await a.insert(make_prediction("p1"))
            while_live = await b.leases.claim("p1")
            _expire(db_url, "p1")
            return while_live, await b.leases.claim("p1"), await b.leases.claim("nope")
        finally:
            await a.close()
            await b.close()

    while_live, expired, unknown = asyncio.run(scenario())
    assert while_live is None
    assert expired is not None
    assert expired.id == "p1"
    assert unknown is None


def test_a_write_of_a_record_another_process_took_lands_nowhere(
    db_url: str, make_prediction: MakePrediction
) -> None:
    event = OutboxEvent(
        id="msg_1",
        prediction_id="p1",
        event="completed",
        url="https://example.com/hook",
        body="{}",
        created_at=datetime.now(UTC),
        seq=3,
    )

    async def scenario() -> tuple[BaseException | None, BaseException | None, Prediction | None]:
        a, b = await _open(db_url), await _open(db_url)
        try:
            p = make_prediction("p1")
            await a.insert(p)
            _expire(db_url, "p1")  # A stalled past its lease: B takes the work
            (taken,) = await b.leases.claim_expired(limit=10)
            p.status, p.output = PredictionStatus.SUCCEEDED, "A's late outcome"
            results = await asyncio.gather(
                a.write(p, new=False, events=[event]),
                a.insert(make_prediction("p2")),  # shares the commit; unaffected
                return_exceptions=True,
            )
            taken.status, taken.output = PredictionStatus.FAILED, "B's outcome"
            await b.update(taken)
            return results[0], results[1], await a.get("p1")
        finally:
            await a.close()
            await b.close()

    lost, other, stored = asyncio.run(scenario())
    assert isinstance(lost, ClaimLost)
    assert "no longer this process's to write" in str(lost)
    assert other is None
    assert stored is not None
    assert (stored.status, stored.output) == (PredictionStatus.FAILED, "B's outcome")
    assert execute(db_url, "SELECT count(*) FROM webhook_events") == [(0,)]
    assert _claims(db_url)["p1"] == (None, None)  # the end cleared B's claim


def test_an_ended_record_is_no_longer_written_by_its_former_holder(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> BaseException | None:
        store = await _open(db_url)
        try:
            p = make_prediction("p1")
            await store.insert(p)
            p.status = PredictionStatus.CANCELED
            await store.update(p)
            p.logs = "a stray line after the end"
            (late,) = await asyncio.gather(store.update(p), return_exceptions=True)
            return late
        finally:
            await store.close()

    assert isinstance(asyncio.run(scenario()), ClaimLost)
    assert execute(db_url, "SELECT logs FROM predictions") == [("",)]


def test_a_released_record_is_taken_at_once(db_url: str, make_prediction: MakePrediction) -> None:
    async def scenario() -> list[Prediction]:
        a, b = await _open(db_url), await _open(db_url)
        try:
            p = make_prediction("p1")
            await a.insert(p)
            a.update_soon(p, release=True)  # a stop hands it back
            await a.flush()
            return await b.leases.claim_expired(limit=10)
        finally:
            await a.close()
            await b.close()

    assert [p.id for p in asyncio.run(scenario())] == ["p1"]


def test_claimers_side_by_side_never_take_the_same_record(
    db_url: str, make_prediction: MakePrediction
) -> None:
    n, claimers = 120, 4

    async def scenario() -> list[list[str]]:
        writer = await _open(db_url)
        stores = [await _open(db_url) for _ in range(claimers)]
        try:
            await asyncio.gather(
                *(writer.insert(make_prediction(f"p{i:03}", offset_s=i)) for i in range(n))
            )
            execute(db_url, f"UPDATE predictions SET lease_until = '{PAST}'")

            async def claim_all(store: PredictionStore) -> list[str]:
                mine: list[str] = []
                while taken := await store.leases.claim_expired(limit=7):
                    mine += [p.id for p in taken]
                return mine

            return list(await asyncio.gather(*(claim_all(s) for s in stores)))
        finally:
            for store in (writer, *stores):
                await store.close()

    taken = asyncio.run(scenario())
    every = [id for ids in taken for id in ids]
    assert sorted(every) == [f"p{i:03}" for i in range(n)]  # each once, none left
    if backend(db_url) == "postgresql":  # SKIP LOCKED: they really did share the work
        assert sum(1 for ids in taken if ids) > 1


def test_an_end_is_announced_to_every_process_only_once_committed(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> tuple[list[str | None], list[str | None]]:
        a, b = await _open(db_url), await _open(db_url)
        heard: dict[str, list[str | None]] = {DONE: [], CANCEL: []}
        arrived = asyncio.Event()

        def hear(channel: str) -> Callable[[str | None], None]:
            def on(payload: str | None) -> None:
                if payload is not None:
                    heard[channel].append(payload)
                    arrived.set()

            return on

        b.notices.subscribe(DONE, hear(DONE))
        b.notices.subscribe(CANCEL, hear(CANCEL))
        try:
            await b.notices.start()
            p = make_prediction("p1")
            await a.insert(p)  # not an end: no notice
            p.status = PredictionStatus.PROCESSING
            await a.update(p)
            await a.publish(CANCEL, "p1")
            await asyncio.wait_for(arrived.wait(), 10)
            arrived.clear()
            p.status = PredictionStatus.SUCCEEDED
            await a.update(p)
            await asyncio.wait_for(arrived.wait(), 10)
            return heard[DONE], heard[CANCEL]
        finally:
            await a.close()
            await b.close()

    done, cancel = asyncio.run(scenario())
    assert (done, cancel) == (["p1"], ["p1"])


@pytest.mark.postgresql
def test_a_listener_whose_connection_is_cut_reconnects_and_tells_everyone_to_re_read(
    postgres_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> list[str | None]:
        a, b = await _open(postgres_url), await _open(postgres_url)
        heard: list[str | None] = []
        changed = asyncio.Event()

        def on(payload: str | None) -> None:
            heard.append(payload)
            changed.set()

        b.notices.subscribe(DONE, on)
        try:
            await b.notices.start()
            heard.clear()  # the first connect tells everyone too
            terminated = execute(
                postgres_url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' OR query = 'SELECT 1'",
            )
            assert terminated, "no listening connection found"
            while None not in heard:  # reconnected: anything may have been missed
                changed.clear()
                await asyncio.wait_for(changed.wait(), 10)
            p = make_prediction("p1")
            await a.insert(p)
            p.status = PredictionStatus.SUCCEEDED
            await a.update(p)
            while "p1" not in heard:
                changed.clear()
                await asyncio.wait_for(changed.wait(), 10)
            return heard
        finally:
            await a.close()
            await b.close()

    heard = asyncio.run(scenario())
    assert heard[-1] == "p1"


def test_updates_sharing_a_commit_each_land_or_are_lost_on_their_own(
    db_url: str, make_prediction: MakePrediction
) -> None:
    """A commit's updates reach the database together (one statement on PostgreSQL): only the
    one whose record another process took is lost; the others land."""

    async def scenario() -> tuple[list[BaseException | None], dict[str, Prediction | None], int]:
        a, b = await _open(db_url), await _open(db_url)
        try:
            records = [make_prediction(f"p{i}", offset_s=i) for i in range(5)]
            for p in records:
                await a.insert(p)
            _expire(db_url, "p2")
            assert await b.leases.claim("p2") is not None  # B takes p2 alone
            for p in records:
                p.status, p.output = PredictionStatus.SUCCEEDED, f"A's {p.id}"
            before = a.commits
            results = await asyncio.gather(
                *(a.write(p, new=False) for p in records), return_exceptions=True
            )
            commits = a.commits - before
            return list(results), {p.id: await a.get(p.id) for p in records}, commits
        finally:
            await a.close()
            await b.close()

    results, stored, commits = asyncio.run(scenario())
    assert commits == 1
    assert [type(r).__name__ for r in results] == [
        "NoneType",
        "NoneType",
        "ClaimLost",
        "NoneType",
        "NoneType",
    ]
    for id, p in stored.items():
        assert p is not None
        if id == "p2":
            assert (p.status, p.output) == (PredictionStatus.PENDING, None)
        else:
            assert (p.status, p.output) == (PredictionStatus.SUCCEEDED, f"A's {id}")
    claims = _claims(db_url)
    assert claims["p2"][0] is not None  # still B's
    assert {id for id, (holder, _) in claims.items() if holder is None} == {"p0", "p1", "p3", "p4"}
