"""PredictionStore writes: round trips, snapshots, group commit, coalescing and failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from _databases import write_lock
from foretell.domain import ErrorSource, Prediction, PredictionError, PredictionStatus
from foretell.store import PredictionStore

MakePrediction = Callable[..., Prediction]


def test_insert_then_get_round_trips_every_field(
    db_url: str, make_prediction: MakePrediction
) -> None:
    plus_two = timezone(timedelta(hours=2))
    full = make_prediction(
        "p-full",
        owner="o",
        name="n",
        version_number=7,
        deployment_id="dep-1",
        status=PredictionStatus.FAILED,
        input={"text": "héllo", "n": [1, 2.5, None, {"deep": True}]},
        output={"labels": ["a", "b"], "scores": [0.25, 0.75]},
        error=PredictionError(ErrorSource.MODEL, "boom", {"line": 3}),
        webhook={"url": "https://example.com/hook", "events": ["completed"]},
        created_at=datetime(2025, 6, 1, 14, 0, 0, 123456, tzinfo=plus_two),
        updated_at=datetime(2025, 6, 1, 12, 0, 3, tzinfo=UTC),
        started_at=datetime(2025, 6, 1, 12, 0, 1, 5, tzinfo=UTC),
        completed_at=datetime(2025, 6, 1, 12, 0, 2, 999999, tzinfo=UTC),
        deadline_at=datetime(2025, 6, 1, 12, 1, 0, tzinfo=UTC),
        setup_time=timedelta(seconds=1, microseconds=234567),
        execution_time=timedelta(milliseconds=42),
        logs="line 1\nline 2 ✓\n",
        attempts=2,
    )
    bare = make_prediction("p-bare")

    async def scenario() -> tuple[Prediction | None, Prediction | None]:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(full)
            await store.insert(bare)
            return await store.get("p-full"), await store.get("p-bare")
        finally:
            await store.close()

    got_full, got_bare = asyncio.run(scenario())
    assert got_full == full
    assert got_full.created_at.tzinfo is UTC
    assert got_full.created_at.hour == 12  # normalised from +02:00
    assert all(
        d.tzinfo is UTC
        for d in (got_full.updated_at, got_full.started_at, got_full.completed_at)
        if d is not None
    )
    assert got_bare == bare
    assert got_bare.output is None
    assert got_bare.error is None
    assert got_bare.setup_time is None


def test_get_unknown_id_returns_none(db_url: str) -> None:
    async def scenario() -> Prediction | None:
        store = await PredictionStore.open(db_url)
        try:
            return await store.get("nope")
        finally:
            await store.close()

    assert asyncio.run(scenario()) is None


def test_update_soon_snapshots_now_and_commits_on_flush(
    db_url: str, make_prediction: MakePrediction
) -> None:
    p = make_prediction("p1")

    async def scenario() -> tuple[Prediction | None, Prediction | None]:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(p)
            p.status = PredictionStatus.PROCESSING
            p.output = {"label": "cat"}
            store.update_soon(p)
            # Changes after the call belong to a later write, not this one.
            p.output["label"] = "dog"
            p.logs = "later"
            await store.flush()
            flushed = await store.get("p1")
            # The end comes last: a record that ended is no longer this process's to write.
            p.status = PredictionStatus.SUCCEEDED
            await store.update(p)
            return flushed, await store.get("p1")
        finally:
            await store.close()

    flushed, updated = asyncio.run(scenario())
    assert flushed is not None
    assert flushed.status is PredictionStatus.PROCESSING
    assert flushed.output == {"label": "cat"}
    assert flushed.logs == ""
    assert updated is not None
    assert updated.status is PredictionStatus.SUCCEEDED
    assert updated.output == {"label": "dog"}
    assert updated.logs == "later"


def test_insert_and_updates_of_one_id_coalesce_into_one_insert(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> tuple[int, Prediction | None, Prediction | None]:
        store = await PredictionStore.open(db_url)
        try:
            # Keep the writer busy on a first commit so everything below queues behind it.
            with write_lock(db_url):
                first = asyncio.create_task(store.insert(make_prediction("other")))
                await asyncio.sleep(0.05)
                before = store.commits
                p = make_prediction("p1")
                inserted = asyncio.create_task(store.insert(p))
                await asyncio.sleep(0)
                p.status = PredictionStatus.PROCESSING
                store.update_soon(p)
                p.status = PredictionStatus.SUCCEEDED
                p.output = [1, 2, 3]
                updated = asyncio.create_task(store.update(p))
                await asyncio.sleep(0.05)
            await asyncio.gather(first, inserted, updated)
            return store.commits - before, await store.get("p1"), await store.get("other")
        finally:
            await store.close()

    commits, got, other = asyncio.run(scenario())
    assert commits == 2  # "other", then p1's insert + updates as one
    assert got is not None
    assert got.status is PredictionStatus.SUCCEEDED
    assert got.output == [1, 2, 3]
    assert other is not None


def test_concurrent_inserts_share_commits(db_url: str, make_prediction: MakePrediction) -> None:
    n = 200

    async def scenario() -> tuple[int, int]:
        store = await PredictionStore.open(db_url)
        try:
            before = store.commits
            await asyncio.gather(
                *(store.insert(make_prediction(f"p{i}", offset_s=i)) for i in range(n))
            )
            commits = store.commits - before
            page = await store.list(limit=1000)
            return commits, len(page.items)
        finally:
            await store.close()

    commits, stored = asyncio.run(scenario())
    assert stored == n
    assert 1 <= commits <= n // 20


def test_a_bad_row_fails_only_its_own_callers(db_url: str, make_prediction: MakePrediction) -> None:
    async def scenario() -> tuple[BaseException | None, ...]:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(make_prediction("dup"))
            results = await asyncio.gather(
                store.insert(make_prediction("ok1")),
                store.insert(make_prediction("dup")),
                store.insert(make_prediction("ok2")),
                return_exceptions=True,
            )
            # The writer keeps running after a failure.
            await store.insert(make_prediction("after"))
            for id in ("ok1", "ok2", "after"):
                assert await store.get(id) is not None
            return tuple(results)
        finally:
            await store.close()

    ok1, dup, ok2 = asyncio.run(scenario())
    assert ok1 is None
    assert ok2 is None
    assert isinstance(dup, IntegrityError)


def test_flush_raises_when_a_queued_write_failed(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> None:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(make_prediction("dup"))
            failing = asyncio.create_task(store.insert(make_prediction("dup")))
            await asyncio.sleep(0)
            with pytest.raises(IntegrityError):
                await store.flush()
            with pytest.raises(IntegrityError):
                await failing
            await store.flush()  # nothing failed since
        finally:
            await store.close()

    asyncio.run(scenario())


def test_unserialisable_values_fail_the_caller_at_once(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> None:
        store = await PredictionStore.open(db_url)
        try:
            p = make_prediction("p1", output={"x": object()})
            with pytest.raises(TypeError):
                await store.insert(p)
            with pytest.raises(TypeError):
                store.update_soon(p)
            await store.flush()
            assert await store.get("p1") is None
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_cancelled_insert_is_still_committed(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> Prediction | None:
        store = await PredictionStore.open(db_url)
        try:
            task = asyncio.create_task(store.insert(make_prediction("p1")))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await store.flush()
            return await store.get("p1")
        finally:
            await store.close()

    assert asyncio.run(scenario()) is not None


def test_close_commits_queued_writes_then_refuses_more(
    db_url: str, make_prediction: MakePrediction
) -> None:
    p = make_prediction("p1")

    async def scenario() -> Prediction | None:
        store = await PredictionStore.open(db_url)
        await store.insert(p)
        p.status = PredictionStatus.CANCELED
        store.update_soon(p)
        await store.close()
        with pytest.raises(RuntimeError, match="closed"):
            await store.insert(make_prediction("p2"))
        reopened = await PredictionStore.open(db_url)
        try:
            return await reopened.get("p1")
        finally:
            await reopened.close()

    got = asyncio.run(scenario())
    assert got is not None
    assert got.status is PredictionStatus.CANCELED


@pytest.mark.parametrize("output", [2.0, 3, "12", "2.0", True, [1.5], 1e300])
def test_bare_json_outputs_read_back_with_their_type(
    db_url: str, make_prediction: MakePrediction, output: object
) -> None:
    async def scenario() -> object:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(make_prediction("p", output=output))
            found = await store.get("p")
        finally:
            await store.close()
        assert found is not None
        return found.output

    got = asyncio.run(scenario())
    assert got == output
    assert type(got) is type(output)


def test_a_nul_character_in_logs_is_stored_as_a_replacement_character(
    db_url: str, make_prediction: MakePrediction
) -> None:
    # PostgreSQL's TEXT refuses NUL outright: one byte a model printed failed its record's write.
    # JSON fields are safe (orjson escapes it as \u0000); free text is not.
    p = make_prediction("p1", logs="before\x00after\n", input={"text": "a\x00b"})

    async def scenario() -> Prediction | None:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(p)
            p.logs += "more\x00\n"
            await store.update(p)
            return await store.get("p1")
        finally:
            await store.close()

    got = asyncio.run(scenario())
    assert got is not None
    assert got.logs == "before\ufffdafter\nmore\ufffd\n"
    assert got.input == {"text": "a\x00b"}, "inside JSON it is kept, escaped"
