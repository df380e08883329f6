"""A prediction's event stream from its record: ids are positions, and a reader cut anywhere
resumes from its last id with exactly the events it had not had."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foretell.domain import (
    ErrorSource,
    OutputStream,
    Prediction,
    PredictionError,
    PredictionStatus,
)
from foretell.errors import InvalidStreamPosition
from foretell.service.stream import StreamEvent, StreamPosition, cut, events_since

T0 = datetime(2026, 12, 7, tzinfo=UTC)


def record(**fields: Any) -> Prediction:
    values: dict[str, Any] = {
        "id": "p1",
        "owner": "acme",
        "name": "m",
        "version_number": 1,
        "status": PredictionStatus.PENDING,
        "input": {},
        "created_at": T0,
        "updated_at": T0,
    }
    return Prediction(**(values | fields))


# One step of a prediction as it runs: it starts, prints, yields an item.
Step = tuple[str, Any]
INT64 = st.integers(-(2**63), 2**63 - 1)  # what JSON (orjson) takes
ITEM = st.one_of(INT64, st.text(max_size=4), st.lists(st.booleans(), max_size=2))
TEXT = st.text(max_size=5)  # a token may be empty: it adds no event, and no position


@st.composite
def runs(draw: st.DrawFn) -> list[Prediction]:
    """The states a record goes through as a prediction runs (as a stream reader may see
    them), from pending to its end."""
    mode = draw(st.sampled_from([OutputStream.TEXT, OutputStream.ITEMS, None]))
    end = draw(st.sampled_from([PredictionStatus.SUCCEEDED, PredictionStatus.FAILED]))
    end = draw(st.sampled_from([end, PredictionStatus.CANCELED]))
    steps: list[Step] = [("start", None)]
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.booleans()):
            steps.append(("logs", draw(st.text(min_size=1, max_size=6))))
        elif mode is not None:
            steps.append(("item", draw(TEXT if mode is OutputStream.TEXT else ITEM)))
    p = record()
    states = [copy.deepcopy(p)]
    for kind, value in steps:
        if kind == "start":
            p.status = PredictionStatus.PROCESSING
        elif kind == "logs":
            p.logs += value
        elif mode is OutputStream.TEXT:
            p.streamed, p.output = mode, (p.output or "") + value
        else:
            p.streamed, p.output = mode, [*(p.output or []), value]
        states.append(copy.deepcopy(p))
    p.status = end
    p.logs += draw(st.text(max_size=6))  # what the end adds
    if end is PredictionStatus.FAILED:
        p.error = PredictionError(ErrorSource.MODEL, "boom")
    if mode is None and end is PredictionStatus.SUCCEEDED:
        p.output = draw(ITEM)
    states.append(copy.deepcopy(p))
    return states


@dataclass
class Seen:
    event: StreamEvent
    look: int  # which of the reader's looks at the record gave it


START = StreamPosition()


def read(
    states: list[Prediction], looks: list[int], since: StreamPosition = START
) -> tuple[list[Seen], StreamPosition]:
    """A reader that looks at the record in the states `looks` names, in order."""
    seen: list[Seen] = []
    for look in looks:
        events, since = events_since(states[look], since)
        seen += [Seen(e, look) for e in events]
    return seen, since


@st.composite
def reads(draw: st.DrawFn) -> tuple[list[Prediction], list[int]]:
    states = draw(runs())
    last = len(states) - 1
    looks = [*sorted(draw(st.sets(st.integers(0, last - 1)))), last]
    return states, looks


@given(reads(), st.data())
@settings(max_examples=300, deadline=None)
def test_a_stream_cut_anywhere_resumes_from_its_last_id_with_the_same_events(
    run: tuple[list[Prediction], list[int]], data: st.DataObject
) -> None:
    states, looks = run
    whole, end = read(states, looks)
    cut_at = data.draw(st.integers(0, len(whole)), label="cut after this many events")
    had = whole[:cut_at]
    # The reader reconnects with the last id it had (none: from the start) and looks at the
    # record as it was then, and as it was each time after.
    last_id = had[-1].event.id if had else None
    since = StreamPosition() if last_id is None else StreamPosition.parse(last_id)
    resume_look = whole[cut_at].look if cut_at < len(whole) else looks[-1]
    rest, resumed_end = read(states, [look for look in looks if look >= resume_look], since)
    assert [s.event for s in had + rest] == [s.event for s in whole]
    assert resumed_end == end


@given(reads())
@settings(max_examples=300, deadline=None)
def test_the_events_add_up_to_the_final_record(
    run: tuple[list[Prediction], list[int]],
) -> None:
    states, looks = run
    final = states[-1]
    seen, end = read(states, looks)
    events = [s.event for s in seen]
    outputs = [e.data for e in events if e.event == "output"]
    assert "".join(e.data for e in events if e.event == "logs") == final.logs
    if final.streamed is OutputStream.TEXT:
        assert "".join(outputs) == final.output
    elif final.streamed is OutputStream.ITEMS:
        assert [orjson.loads(o) for o in outputs] == final.output  # one event an item
    elif final.status is PredictionStatus.SUCCEEDED:
        assert [orjson.loads(o) for o in outputs] == [final.output]  # the whole, once
    else:
        assert outputs == []
    # Every id is the position after its event, and parses back to itself; done is last.
    assert [e.id for e in events] == [
        str(StreamPosition.parse(e.id)) for e in events if e.id is not None
    ]
    assert events[-1] == StreamEvent("done", f'{{"status":"{final.status}"}}', str(end))
    errors = [e for e in events if e.event == "error"]
    assert len(errors) == (final.status is PredictionStatus.FAILED)
    # A replay of the final record gives the same ids for the same ends.
    replayed, replay_end = events_since(final, StreamPosition())
    assert replay_end == end
    assert replayed[-1] == events[-1]


def test_the_order_within_one_look_is_status_logs_output_error_done() -> None:
    p = record(
        status=PredictionStatus.FAILED,
        logs="a\nb\n",
        output="hi",
        streamed=OutputStream.TEXT,
        error=PredictionError(ErrorSource.MODEL, "boom"),
    )
    events, end = events_since(p, StreamPosition(0, 0, 2))
    assert events == [
        StreamEvent("logs", "a\nb\n", "0-4-2"),
        StreamEvent("output", "hi", "2-4-2"),
        StreamEvent(
            "error",
            '{"status":"failed","error":{"source":"model","message":"boom"}}',
            "2-4-3",
        ),
        StreamEvent("done", '{"status":"failed"}', "2-4-4"),
    ]
    assert end == StreamPosition(2, 4, 4)
    assert events_since(p, end) == ([], end)  # nothing more, ever


def test_a_running_record_says_its_status_once() -> None:
    p = record(status=PredictionStatus.PROCESSING)
    events, end = events_since(p, StreamPosition())
    assert events == [StreamEvent("status", '{"status":"processing"}', "0-0-2")]
    assert events_since(p, end) == ([], end)


def test_a_whole_output_is_one_event_once_it_succeeded() -> None:
    p = record(status=PredictionStatus.PROCESSING)
    assert events_since(p, StreamPosition(0, 0, 2)) == ([], StreamPosition(0, 0, 2))
    p.status, p.output = PredictionStatus.SUCCEEDED, {"label": "cat"}
    events, end = events_since(p, StreamPosition(0, 0, 2))
    assert [e.event for e in events] == ["output", "done"]
    assert events[0] == StreamEvent("output", '{"label":"cat"}', "1-0-2")
    assert end == StreamPosition(1, 0, 4)


def test_a_cut_has_no_id_and_says_it_may_resume() -> None:
    event = cut("the server is stopping")
    assert event.id is None
    assert event.event == "error"
    assert orjson.loads(event.data) == {"reason": "the server is stopping", "resume": True}


@pytest.mark.parametrize(
    "text", ["", "1-2", "1-2-3-4", "-1-0-0", "a-b-c", "1-2-5", " 1-2-3", "1_0-0-0", "٣-0-0"]
)
def test_a_position_that_is_not_three_non_negative_integers_is_refused(text: str) -> None:
    with pytest.raises(InvalidStreamPosition) as refused:
        StreamPosition.parse(text)
    assert "Last-Event-ID" in refused.value.message
    assert refused.value.value == text


def test_a_position_parses_and_prints_back() -> None:
    assert StreamPosition.parse("12-340-2") == StreamPosition(12, 340, 2)
    assert str(StreamPosition(12, 340, 2)) == "12-340-2"


@pytest.mark.parametrize(
    ("since", "problem"),
    [
        (StreamPosition(4, 0, 2), "past this prediction's output"),
        (StreamPosition(0, 9, 2), "past this prediction's logs"),
        (StreamPosition(0, 0, 4), "says the stream ended"),
        (StreamPosition(0, 0, 3), "says the stream ended"),
    ],
)
def test_a_position_past_the_record_is_refused(since: StreamPosition, problem: str) -> None:
    p = record(
        status=PredictionStatus.PROCESSING, output="abc", streamed=OutputStream.TEXT, logs="x"
    )
    with pytest.raises(InvalidStreamPosition) as refused:
        events_since(p, since)
    assert problem in refused.value.message
    assert str(since) in refused.value.message


def test_a_whole_output_said_sent_before_it_succeeded_is_refused() -> None:
    p = record(status=PredictionStatus.CANCELED)
    with pytest.raises(InvalidStreamPosition, match="says its output was sent"):
        events_since(p, StreamPosition(1, 0, 2))


def test_a_reader_far_behind_takes_a_long_record_in_bounded_looks_then_its_end() -> None:
    # 64 items of 20,000 characters: a reader replaying it must not hold all of it (1.3 MB of
    # JSON) at once, as 300 readers of one long record did (GBs); it asks again until its end.
    items = [f"{i:05}" + "x" * 19_995 for i in range(64)]
    p = record(status=PredictionStatus.FAILED, output=items, streamed=OutputStream.ITEMS)
    p.error = PredictionError(ErrorSource.MODEL, "boom")
    since, looks, seen = StreamPosition(), 0, []
    while True:
        events, since = events_since(p, since)
        if not events:
            break
        looks += 1
        assert sum(len(e.data) for e in events) < 200_000, "one look holds a bounded batch"
        seen += events
    assert looks > 1
    assert [orjson.loads(e.data) for e in seen if e.event == "output"] == items
    assert [e.id for e in seen if e.event == "output"] == [f"{n}-0-0" for n in range(1, 65)]
    assert [e.event for e in seen[-2:]] == ["error", "done"]  # once, after the last item
    assert since == StreamPosition(64, 0, 4)


def test_a_long_text_comes_in_bounded_looks_that_add_up_to_it_a_crlf_kept_whole() -> None:
    text = ("a" * 65_535 + "\r\n") * 10  # a CRLF across each 64 KiB boundary
    p = record(status=PredictionStatus.SUCCEEDED, output=text, streamed=OutputStream.TEXT)
    since, pieces = StreamPosition(0, 0, 2), []
    while True:
        events, since = events_since(p, since)
        if not events:
            break
        pieces += [e.data for e in events if e.event == "output"]
        assert len(events) == 1 or events[-1].event == "done"
    assert len(pieces) > 1
    assert all(len(piece) <= 70_000 for piece in pieces)
    assert "".join(pieces) == text
    assert not any(piece.endswith("\r") for piece in pieces)  # SSE would make \r + \n two LFs
    assert since == StreamPosition(len(text), 0, 4)
