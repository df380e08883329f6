"""A running prediction's record grows with its replica's Chunks: output as its stream says,
logs capped, saved at most every progress interval (with its webhook's output/logs events), and
its event stream follows it live, the end only once durable."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from foretell.domain import (
    DeploymentStatus,
    OutboxEvent,
    OutputStream,
    Prediction,
    PredictionStatus,
)
from foretell.domain.access import Principal, Scope
from foretell.errors import InvalidStreamPosition, PredictionNotFound
from foretell.manifest import Manifest, ModelVersion
from foretell.manifest.schema import InputValidator
from foretell.scheduler import Job, Scheduler
from foretell.service.deployment import Deployment
from foretell.service.following import Following
from foretell.service.reservation import Reservation, Unfinished
from foretell.service.stream import StreamEvent, StreamPosition
from foretell.service.sweeper import Sweeper
from foretell.service.task import PredictionTask, TaskContext
from foretell.store import ClaimLost, PredictionStore
from foretell.webhooks import Outbox
from foretell.workers import Chunk, Outcome

pytestmark = pytest.mark.anyio

SCHEMA = {
    "type": "object",
    "properties": {"prompt": {"type": "string", "title": "Prompt"}},
    "required": ["prompt"],
    "title": "Input",
}
INTERVAL_S = 0.5
LOGS_CAP = 40
HOOK = {"url": "https://receiver.test/hook", "events": ["start", "output", "logs", "completed"]}
LONG_S = 30.0  # far past what any step here should take
TEXT, ITEMS = OutputStream.TEXT, OutputStream.ITEMS


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeScheduler:
    """Takes jobs and leaves them for the test to start, feed and end."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def submit(self, job: Job) -> None:
        self.jobs.append(job)

    def cancel(self, job: Job) -> None:
        job.canceled = True

    def place(self, job: Job) -> None:
        return None


@dataclass
class Write:
    how: str  # "insert_soon" | "update_soon" | "write"
    record: Prediction  # as it was written
    events: list[str] = field(default_factory=list)


class FakeStore:
    """Records each write's record as it was; a `write` commits when the test says."""

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.pending: list[asyncio.Future[None]] = []
        self.records: dict[str, Prediction] = {}

    def _record(self, how: str, p: Prediction, events: Sequence[OutboxEvent] = ()) -> None:
        self.writes.append(Write(how, copy.deepcopy(p), [e.event for e in events]))

    def insert_soon(self, p: Prediction) -> None:
        self._record("insert_soon", p)

    def update_soon(self, p: Prediction, *, release: bool = False) -> None:
        self._record("update_soon", p)

    def write(
        self,
        p: Prediction,
        *,
        new: bool,
        events: Sequence[OutboxEvent] = (),
        on_commit: Callable[[asyncio.Future[None]], None] | None = None,
    ) -> asyncio.Future[None]:
        self._record("write", p, events)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append(done)
        return done

    def commit(self) -> None:
        for done in self.pending:
            done.set_result(None)
        self.pending.clear()

    def updates(self) -> list[Write]:
        return [w for w in self.writes if w.how != "insert_soon"]


class FakeOutbox:
    """Makes an event of each name the webhook asks for (one for progress, as Outbox does)."""

    def events(self, p: Prediction, *names: str, progress: bool = False) -> list[OutboxEvent]:
        wanted = [n for n in names if p.webhook is not None and n in p.webhook["events"]]
        return [cast(OutboxEvent, _Event(n)) for n in (wanted[:1] if progress else wanted)]

    def on_commit(self, events: Sequence[OutboxEvent]) -> Callable[[asyncio.Future[None]], None]:
        return lambda done: None


@dataclass
class _Event:
    event: str


class FakeSweeper:
    """Holds its entries until the test fires them: no time passes by itself."""

    def __init__(self) -> None:
        self.entries: dict[int, tuple[Any, Callable[[Any], None], float]] = {}
        self._ticks = 0

    def add(self, entry: Any, expire: Callable[[Any], None], delay_s: float) -> int:
        self._ticks += 1
        self.entries[self._ticks] = (entry, expire, delay_s)
        return self._ticks

    def discard(self, tick: int, entry: object) -> None:
        self.entries.pop(tick, None)

    def fire(self) -> None:
        entries, self.entries = self.entries, {}
        for entry, expire, _ in entries.values():
            expire(entry)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    store: FakeStore
    sweeper: FakeSweeper
    clock: Clock
    scheduler: FakeScheduler
    deployment: Deployment
    context: TaskContext

    def task(
        self, *, webhook: dict[str, Any] | None = None, owner: str = "alice"
    ) -> PredictionTask:
        now = datetime.now(UTC)
        p = Prediction(
            id=f"p{len(self.scheduler.jobs) + 1}",
            owner="acme",
            name="streamer",
            version_number=1,
            status=PredictionStatus.PENDING,
            input={"prompt": "hi"},
            created_at=now,
            updated_at=now,
            webhook=webhook,
            created_by=owner,
        )
        reservation = Reservation.take(self.deployment.admission, Unfinished(100), None)
        task = PredictionTask(p, self.deployment, self.context, reservation)
        task.start()
        return task

    def job(self, task: PredictionTask) -> Job:
        (job,) = [j for j in self.scheduler.jobs if j.prediction_id == task.prediction.id]
        return job


def rig(tmp_path: Path, runtime: str = "python") -> Rig:
    manifest = Manifest(
        runtime=runtime, predictor="model.py:Model" if runtime == "python" else None
    )
    version = ModelVersion("acme", "streamer", 1, tmp_path, manifest)
    deployment = Deployment("acme", "streamer", 1, version)
    scheduler = FakeScheduler()
    deployment.status = DeploymentStatus.READY
    deployment.validator = InputValidator(SCHEMA)
    deployment.scheduler = cast(Scheduler, scheduler)
    deployment.settled.set()
    store, sweeper, clock = FakeStore(), FakeSweeper(), Clock()
    context = TaskContext(
        cast(PredictionStore, store),
        cast(Outbox, FakeOutbox()),
        cast(Sweeper, sweeper),
        on_settled=lambda task: None,
        max_logs_chars=LOGS_CAP,
        progress_interval_s=INTERVAL_S,
        clock=clock,
    )
    return Rig(store, sweeper, clock, scheduler, deployment, context)


def chunk(*items: Any, mode: OutputStream | None = None, logs: str = "") -> Chunk:
    return Chunk(1, 0, tuple(items), mode if items else None, logs)


async def test_text_chunks_grow_the_live_record_and_the_end_sets_the_whole(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    task = r.task()
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    job.on_chunk(chunk("Hel", "lo", mode=TEXT, logs="step 1\n"))
    p = task.prediction
    assert (p.output, p.streamed, p.logs) == ("Hello", TEXT, "step 1\n")
    job.on_chunk(chunk(" wor", mode=TEXT))
    assert p.output == "Hello wor"
    job.result.set_result(Outcome(output="Hello world", streamed=TEXT, logs="bye\n"))
    await asyncio.sleep(0)
    assert p.status is PredictionStatus.SUCCEEDED
    assert (p.output, p.streamed, p.logs) == ("Hello world", TEXT, "step 1\nbye\n")


async def test_items_are_appended_one_by_one(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = r.task()
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    job.on_chunk(chunk({"t": 1}, mode=ITEMS))
    job.on_chunk(chunk({"t": 2}, {"t": 3}, mode=ITEMS))
    assert task.prediction.output == [{"t": 1}, {"t": 2}, {"t": 3}]
    assert task.prediction.streamed is ITEMS


async def test_a_job_of_a_model_that_neither_prints_nor_streams_gets_no_chunk_callback(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path, runtime="onnx")
    task = r.task()
    assert r.job(task).on_chunk is None


@pytest.mark.parametrize("end", ["failed", "canceled"])
async def test_a_streamed_prediction_that_did_not_succeed_keeps_what_it_streamed_and_printed(
    tmp_path: Path, end: str
) -> None:
    r = rig(tmp_path)
    task = r.task()
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    job.on_chunk(chunk("par", "tial", mode=TEXT, logs="working\n"))
    if end == "failed":
        job.result.set_result(Outcome(output=None, error="boom", streamed=TEXT))
        await asyncio.sleep(0)
    else:
        task.cancel()
    p = task.prediction
    assert p.status is PredictionStatus(end)
    assert (p.output, p.streamed) == ("partial", TEXT)
    assert p.logs.startswith("working\n")
    job.on_chunk(chunk("more", mode=TEXT, logs="late\n"))  # after its end: dropped
    assert (p.output, p.logs.count("late")) == ("partial", 0)


async def test_a_failed_prediction_that_streamed_nothing_keeps_no_output(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = r.task()
    job = r.job(task)
    job.on_start(0.0)
    job.result.set_result(Outcome(output={"half": True}, error="boom"))
    await asyncio.sleep(0)
    assert task.prediction.output is None


async def test_logs_are_cut_at_the_cap_once_with_a_note_also_the_ends(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = r.task()
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    job.on_chunk(chunk(logs="x" * 30 + "\n"))
    job.on_chunk(chunk(logs="y" * 30 + "\n"))
    job.on_chunk(chunk(logs="z" * 30 + "\n"))
    job.result.set_result(Outcome(output="ok", logs="the end's own\n"))
    await asyncio.sleep(0)
    logs = task.prediction.logs
    assert logs == (
        "x" * 30 + "\n" + "y" * 9 + "\n"
        f"[foretell] logs cut: more than {LOGS_CAP} characters (max_prediction_logs_chars)\n"
    )


async def test_the_end_s_logs_alone_are_capped_too(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = r.task()
    job = r.job(task)
    job.on_start(0.0)
    job.result.set_result(Outcome(output="ok", logs="w" * 100))
    await asyncio.sleep(0)
    assert task.prediction.logs.startswith("w" * LOGS_CAP + "\n[foretell] logs cut")
    assert task.prediction.logs.count("logs cut") == 1


async def test_progress_is_saved_at_most_once_an_interval_the_last_state_always(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    task = r.task()
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    before = len(r.store.updates())
    job.on_chunk(chunk("a", mode=TEXT))  # the first is saved at once
    saved = r.store.updates()[before:]
    assert [(w.how, w.record.output, w.record.streamed) for w in saved] == [
        ("update_soon", "a", TEXT)
    ]
    r.clock.now += 0.1
    job.on_chunk(chunk("b", mode=TEXT))
    r.clock.now += 0.1
    job.on_chunk(chunk("c", mode=TEXT, logs="l\n"))
    assert len(r.store.updates()) == before + 1, "not again within the interval"
    ((_, _, delay),) = r.sweeper.entries.values()  # one save due, for all of them
    assert delay == pytest.approx(INTERVAL_S - 0.1)
    r.clock.now += delay
    r.sweeper.fire()
    last = r.store.updates()[-1]
    assert (last.record.output, last.record.logs) == ("abc", "l\n")
    r.clock.now += INTERVAL_S
    job.on_chunk(chunk("d", mode=TEXT))  # an interval after the last save: at once
    assert r.store.updates()[-1].record.output == "abcd"
    assert r.sweeper.entries == {}


async def test_a_save_due_when_it_ends_is_dropped_for_its_terminal_write(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = r.task()
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    job.on_chunk(chunk("a", mode=TEXT))
    job.on_chunk(chunk("b", mode=TEXT))
    assert len(r.sweeper.entries) == 1
    job.result.set_result(Outcome(output="ab", streamed=TEXT))
    await asyncio.sleep(0)
    assert r.sweeper.entries == {}
    assert r.store.writes[-1].record.status is PredictionStatus.SUCCEEDED


async def test_webhook_output_and_logs_events_are_throttled_in_order_the_last_at_the_end(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    task = r.task(webhook=HOOK)
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    job.on_chunk(chunk("a", mode=TEXT, logs="1\n"))  # saved at once
    for text in "bcd":
        r.clock.now += 0.1
        job.on_chunk(chunk(text, mode=TEXT))
    r.clock.now += 0.2
    r.sweeper.fire()  # the interval passed: one save for b, c and d
    r.clock.now += 0.1
    job.on_chunk(chunk(logs="2\n"))  # within the next interval: left for the end
    job.result.set_result(Outcome(output="abcd", streamed=TEXT, logs="3\n"))
    await asyncio.sleep(0)
    writes = [(w.events, w.record.output, w.record.logs) for w in r.store.writes if w.events]
    assert writes == [
        (["start"], None, ""),
        (["output"], "a", "1\n"),  # one event a save: its record says all that grew
        (["output"], "abcd", "1\n"),
        (["logs", "output", "completed"], "abcd", "1\n2\n3\n"),
    ]


async def test_a_prediction_recorded_only_at_its_end_saves_no_progress(tmp_path: Path) -> None:
    r = rig(tmp_path)
    task = r.task()
    task.stored = False  # Recording.ON_END: its caller waits, its record is written at the end
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    job.on_chunk(chunk("a", mode=TEXT))
    assert r.store.writes == []
    assert r.sweeper.entries == {}


# -- its event stream ---------------------------------------------------------------------


ALICE = Principal(owner="alice", scope=Scope.PREDICT)
BOB = Principal(owner="bob", scope=Scope.PREDICT)


def following(
    tasks: dict[str, PredictionTask],
    stored: dict[str, list[Prediction]] | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> Following:
    """Over live `tasks`, and records another process writes: each read gives the next state."""
    states = stored or {}

    async def read(prediction_id: str) -> Prediction | None:
        left = states.get(prediction_id)
        if not left:
            return None
        return left.pop(0) if len(left) > 1 else left[0]

    async def pause(prediction_id: str, timeout_s: float) -> None:
        await asyncio.sleep(0)

    return Following(tasks.get, read, pause, 0.5, stopping)


async def next_event(events: AsyncIterator[StreamEvent]) -> StreamEvent:
    async with asyncio.timeout(LONG_S):
        return await anext(events)


async def test_a_live_stream_follows_the_record_and_ends_once_it_is_durable(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    task = r.task(webhook=HOOK)
    job = r.job(task)
    assert job.on_chunk is not None
    events = await following({task.prediction.id: task}).stream(task.prediction.id, ALICE)
    assert await next_event(events) == StreamEvent("status", '{"status":"pending"}', "0-0-1")
    waiting = asyncio.ensure_future(next_event(events))
    await asyncio.sleep(0)
    assert not waiting.done()
    job.on_start(0.0)
    assert await waiting == StreamEvent("status", '{"status":"processing"}', "0-0-2")
    job.on_chunk(chunk("Hel", "lo", mode=TEXT, logs="go\n"))
    assert await next_event(events) == StreamEvent("logs", "go\n", "0-3-2")
    assert await next_event(events) == StreamEvent("output", "Hello", "5-3-2")
    job.result.set_result(Outcome(output="Hello!", streamed=TEXT))
    waiting = asyncio.ensure_future(next_event(events))
    for _ in range(5):
        await asyncio.sleep(0)
    assert task.ended
    assert not waiting.done(), "nothing of its end before its record is durable"
    r.store.commit()
    assert await waiting == StreamEvent("output", "!", "6-3-2")
    assert await next_event(events) == StreamEvent("done", '{"status":"succeeded"}', "6-3-4")
    with pytest.raises(StopAsyncIteration):
        await next_event(events)


async def test_a_stream_resumed_from_its_last_id_gives_only_what_came_after(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    task = r.task()
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    job.on_chunk(chunk("ab", mode=TEXT))
    follow = following({task.prediction.id: task})
    since = StreamPosition.parse("1-0-2")
    events = await follow.stream(task.prediction.id, ALICE, since)
    assert await next_event(events) == StreamEvent("output", "b", "2-0-2")


async def test_a_stream_of_an_unknown_or_anothers_prediction_is_refused_before_any_event(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    task = r.task(owner="alice")
    follow = following({task.prediction.id: task})
    with pytest.raises(PredictionNotFound):
        await follow.stream(task.prediction.id, BOB)
    with pytest.raises(PredictionNotFound):
        await follow.stream("p-unknown", ALICE)


async def test_a_last_event_id_past_the_record_is_refused_before_any_event(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    task = r.task()
    follow = following({task.prediction.id: task})
    with pytest.raises(InvalidStreamPosition, match="past this prediction's output"):
        await follow.stream(task.prediction.id, ALICE, StreamPosition(3, 0, 1))


async def test_a_stream_of_a_prediction_abandoned_at_a_stop_is_cut_to_be_resumed(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    task = r.task()
    events = await following({task.prediction.id: task}).stream(task.prediction.id, ALICE)
    await next_event(events)  # pending
    waiting = asyncio.ensure_future(next_event(events))
    await asyncio.sleep(0)
    task.abandon()
    cut = await waiting
    assert (cut.event, cut.id) == ("error", None)
    assert '"resume":true' in cut.data


async def test_a_prediction_another_process_runs_is_streamed_from_the_store_until_it_ends(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    base = Prediction(
        id="p-elsewhere",
        owner="acme",
        name="streamer",
        version_number=1,
        status=PredictionStatus.PROCESSING,
        input={},
        created_at=now,
        updated_at=now,
        created_by="alice",
    )
    states = []
    for output, status in [
        (["a"], PredictionStatus.PROCESSING),
        (["a", "b"], PredictionStatus.PROCESSING),
        (["a", "b", "c"], PredictionStatus.SUCCEEDED),
    ]:
        state = copy.deepcopy(base)
        state.output, state.streamed, state.status = output, ITEMS, status
        states.append(state)
    follow = following({}, {"p-elsewhere": states})
    events = await follow.stream("p-elsewhere", ALICE)
    got = [e async for e in events]
    assert [(e.event, e.data, e.id) for e in got] == [
        ("status", '{"status":"processing"}', "0-0-2"),
        ("output", '"a"', "1-0-2"),
        ("output", '"b"', "2-0-2"),
        ("output", '"c"', "3-0-2"),
        ("done", '{"status":"succeeded"}', "3-0-4"),
    ]


async def test_an_end_whose_output_is_shorter_than_what_streamed_cuts_the_stream(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    task = r.task()
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    job.on_chunk(chunk("Hello", mode=TEXT))
    events = await following({task.prediction.id: task}).stream(
        task.prediction.id, ALICE, StreamPosition(5, 0, 2)
    )
    job.result.set_result(Outcome(output="Hi", streamed=TEXT))
    waiting = asyncio.ensure_future(next_event(events))
    for _ in range(5):
        await asyncio.sleep(0)
    r.store.commit()
    cut = await waiting
    assert (cut.event, cut.id) == ("error", None)
    assert "past this prediction's output" in cut.data
    with pytest.raises(StopAsyncIteration):
        await next_event(events)


def elsewhere(
    *states: tuple[list[str] | None, PredictionStatus, datetime | None],
) -> list[Prediction]:
    """The successive records of p-elsewhere as another process saves them (its items, its
    status, when its run started)."""
    now = datetime.now(UTC)
    records = []
    for output, status, started_at in states:
        records.append(
            Prediction(
                id="p-elsewhere",
                owner="acme",
                name="streamer",
                version_number=1,
                status=status,
                input={},
                created_at=now,
                updated_at=now,
                created_by="alice",
                started_at=started_at,
                output=output,
                streamed=ITEMS if output is not None else None,
            )
        )
    return records


async def test_a_reader_resuming_past_what_the_running_process_saved_yet_waits_for_it() -> None:
    # Process A streamed "a".."c" live; its last progress save held two items when the reader,
    # cut, came back through process B: B waits for the record to catch up, nothing repeated.
    run = datetime.now(UTC)
    states = elsewhere(
        (["a", "b"], PredictionStatus.PROCESSING, run),
        (["a", "b", "c", "d"], PredictionStatus.PROCESSING, run),
        (["a", "b", "c", "d"], PredictionStatus.SUCCEEDED, run),
    )
    follow = following({}, {"p-elsewhere": states})
    events = await follow.stream("p-elsewhere", ALICE, StreamPosition(3, 0, 2))
    got = [(e.event, e.data, e.id) async for e in events]
    assert got == [("output", '"d"', "4-0-2"), ("done", '{"status":"succeeded"}', "4-0-4")]


async def test_a_reader_past_a_stored_record_that_ended_or_went_back_to_pending_is_refused() -> (
    None
):
    for status in (PredictionStatus.SUCCEEDED, PredictionStatus.PENDING):
        states = elsewhere((["a"], status, None))
        follow = following({}, {"p-elsewhere": states})
        with pytest.raises(InvalidStreamPosition, match="past this prediction's output"):
            await follow.stream("p-elsewhere", ALICE, StreamPosition(3, 0, 2))


async def test_a_reader_waiting_for_a_lagging_record_is_cut_when_another_run_starts() -> None:
    first, second = datetime.now(UTC), datetime.now(UTC) + timedelta(seconds=1)
    states = elsewhere(
        (["a"], PredictionStatus.PROCESSING, first),
        (["x"], PredictionStatus.PROCESSING, second),  # re-run after a takeover: not "a"
        (["x", "y", "z", "w"], PredictionStatus.PROCESSING, second),
    )
    follow = following({}, {"p-elsewhere": states})
    events = await follow.stream("p-elsewhere", ALICE, StreamPosition(3, 0, 2))
    got = [e async for e in events]
    assert [(e.event, e.id) for e in got] == [("error", None)]
    assert "past this prediction's output" in got[0].data


async def test_a_stream_polling_the_store_is_cut_when_this_process_takes_it_over_anew(
    tmp_path: Path,
) -> None:
    # Another process ran it ("a".."c" streamed); this one took it over and runs it again
    # from the start: the reader's position is not in the new run's record.
    r = rig(tmp_path)
    task = r.task()
    states = elsewhere((["a", "b", "c"], PredictionStatus.PROCESSING, datetime.now(UTC)))
    tasks: dict[str, PredictionTask] = {}
    follow = following(tasks, {"p-elsewhere": states})
    events = await follow.stream("p-elsewhere", ALICE, StreamPosition(3, 0, 2))
    tasks["p-elsewhere"] = task
    cut = await next_event(events)
    assert (cut.event, cut.id) == ("error", None)
    assert "past this prediction's output" in cut.data
    with pytest.raises(StopAsyncIteration):
        await next_event(events)


async def test_a_stream_of_a_run_another_process_took_over_is_cut_not_continued_from_its_run(
    tmp_path: Path,
) -> None:
    # This process streamed "Hello" and lost its claim (its terminal write found another
    # process had taken the prediction over): the stored record is that process's run, from
    # the start. Waiting for it to outgrow the reader's position would mix two runs' outputs.
    r = rig(tmp_path)
    task = r.task()
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    job.on_chunk(chunk("Hello", mode=TEXT))
    rerun = copy.deepcopy(task.prediction)
    rerun.output, rerun.started_at = "Hi", datetime.now(UTC) + timedelta(seconds=1)
    follow = following({task.prediction.id: task}, {task.prediction.id: [rerun]})
    events = await follow.stream(task.prediction.id, ALICE, StreamPosition(5, 0, 2))
    job.result.set_result(Outcome(output="Hello!", streamed=TEXT))
    waiting = asyncio.ensure_future(next_event(events))
    for _ in range(5):
        await asyncio.sleep(0)
    r.store.pending[-1].set_exception(ClaimLost("predictions", task.prediction.id))
    cut = await waiting
    assert task.lost
    assert (cut.event, cut.id) == ("error", None)
    assert "past this prediction's output" in cut.data


BIG_ITEMS = [f"{i:05}" + "x" * 19_995 for i in range(40)]  # 0.8 MB: several looks' batches


async def test_a_long_stored_record_streams_whole_in_batches_without_waiting_a_poll() -> None:
    (done,) = elsewhere((BIG_ITEMS, PredictionStatus.SUCCEEDED, None))
    pauses = 0

    async def read(prediction_id: str) -> Prediction | None:
        return done

    async def pause(prediction_id: str, timeout_s: float) -> None:
        nonlocal pauses
        pauses += 1

    events = await Following(lambda _: None, read, pause, 0.5, lambda: False).stream(
        "p-elsewhere", ALICE
    )
    got = [e async for e in events]
    assert [e.data for e in got[:-1]] == [f'"{item}"' for item in BIG_ITEMS]
    assert (got[-1].event, got[-1].id) == ("done", "40-0-4")
    assert pauses == 0, "an ended record is read on at once, not after a poll"


async def test_a_live_stream_resumed_after_its_end_gives_all_of_a_long_output_then_done(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    task = r.task()
    job = r.job(task)
    assert job.on_chunk is not None
    job.on_start(0.0)
    job.on_chunk(chunk(*BIG_ITEMS, mode=ITEMS))
    job.result.set_result(Outcome(output=BIG_ITEMS, streamed=ITEMS))
    for _ in range(5):
        await asyncio.sleep(0)
    assert task.ended
    r.store.commit()
    events = await following({task.prediction.id: task}).stream(
        task.prediction.id, ALICE, StreamPosition(0, 0, 2)
    )
    async with asyncio.timeout(LONG_S):
        got = [e async for e in events]
    assert [e.data for e in got[:-1]] == [f'"{item}"' for item in BIG_ITEMS]
    assert (got[-1].event, got[-1].id) == ("done", "40-0-4")
