"""A stored record the store cannot serve back (nested past what an answer can carry, or not
JSON at all: written by an older server or by hand) is read with a note in place of the field,
never failing the list or the read that includes it, and is never written over."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from _databases import execute
from foretell.domain import ErrorSource, Prediction, PredictionStatus
from foretell.store import PredictionStore

MakePrediction = Callable[..., Prediction]


def lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_record_nested_too_deep_to_serve_back_lists_and_reads_with_a_note(
    db_url: str, make_prediction: MakePrediction
) -> None:
    # What the attack stored: {"text": "a", "n": 253 levels} is 254 levels, all orjson writes.
    deep = make_prediction("deep", offset_s=1, input={"text": "a", "n": lists(253)})
    fine = make_prediction("fine", input={"text": "b"})

    async def scenario() -> tuple[list[Prediction], Prediction | None]:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(fine)
            await store.insert(deep)  # written by the store itself, no API in the way
            return (await store.list()).items, await store.get("deep")
        finally:
            await store.close()

    listed, got = asyncio.run(scenario())

    note = {
        "unreadable": "the stored input cannot be shown: it nests deeper than 200 levels "
        "(at n.0.0.0.0.0.0.0…)"
    }
    assert [p.id for p in listed] == ["deep", "fine"]
    assert listed[0].input == note
    assert listed[0].unreadable == {"input": note["unreadable"].split(": ", 1)[1]}
    assert listed[1].input == {"text": "b"}
    assert listed[1].unreadable == {}
    assert got is not None
    assert got.input == note
    # What is served back can be written inside any answer again.
    orjson.dumps({"results": [{"record": {"input": p.input}} for p in listed]})


def test_a_row_that_is_not_json_it_can_read_does_not_fail_the_list(
    db_url: str, make_prediction: MakePrediction
) -> None:
    too_deep_to_parse = "[" * 1100 + "]" * 1100  # orjson reads 1024 levels at most

    async def scenario() -> list[Prediction]:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(make_prediction("p1", status=PredictionStatus.SUCCEEDED))
            await store.insert(make_prediction("p2", offset_s=1))
            _write_raw(db_url, "p1", output=too_deep_to_parse, error="{not json")
            return (await store.list()).items
        finally:
            await store.close()

    p2, p1 = asyncio.run(scenario())

    assert p1.output == {
        "unreadable": "the stored output cannot be shown: it is not JSON that can be read back "
        "(depth limit exceeded: line 1 column 1026 (char 1025))"
    }
    assert p1.error is not None
    assert p1.error.source is ErrorSource.INTERNAL
    assert p1.error.message.startswith("the stored error cannot be shown: it is not JSON")
    assert set(p1.unreadable) == {"output", "error"}
    assert p1.input == {"image": "https://example.com/cat.png"}
    assert p2.unreadable == {}


def test_an_update_leaves_what_could_not_be_read_as_it_is_stored(
    db_url: str, make_prediction: MakePrediction
) -> None:
    async def scenario() -> Prediction | None:
        store = await PredictionStore.open(db_url)
        try:
            await store.insert(make_prediction("p1"))
            _write_raw(db_url, "p1", input="{not json")
            record = await store.get("p1")
            assert record is not None
            assert set(record.unreadable) == {"input"}
            record.status = PredictionStatus.FAILED
            await store.update(record)
            return await store.get("p1")
        finally:
            await store.close()

    updated = asyncio.run(scenario())

    assert updated is not None
    assert updated.status is PredictionStatus.FAILED
    assert _read_raw(db_url, "p1", "input") == "{not json"


def _write_raw(db_url: str, prediction_id: str, **columns: str) -> None:
    """Write column text as another program might, past the store's own encoding."""
    for column, text in columns.items():
        execute(
            db_url,
            f"UPDATE predictions SET {column} = :text WHERE id = :id",
            text=text,
            id=prediction_id,
        )


def _read_raw(db_url: str, prediction_id: str, column: str) -> Any:
    ((value,),) = execute(
        db_url, f"SELECT {column} FROM predictions WHERE id = :id", id=prediction_id
    )
    return value
