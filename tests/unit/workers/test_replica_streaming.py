"""Streamed outputs and live logs through the replica boundary: real replica processes and thread
replicas whose models are doubles (worker_doubles.py). Each chunk reaches its caller before its
batch's outcomes; what arrives is asserted by order (against the Done), never by timing."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from worker_doubles import SIGNATURE, load, version

from foretell.domain import OutputStream
from foretell.manifest import Batching
from foretell.scheduler import Job, Scheduler
from foretell.workers import Chunk, Outcome, ProcessReplica, ThreadReplica
from foretell.workers.logs import cut_note
from foretell.workers.protocol import LARGE_MESSAGE_BYTES

pytestmark = pytest.mark.anyio

FAKE_WORKER = (sys.executable, str(Path(__file__).with_name("fake_worker.py")))
TEXT, ITEMS = OutputStream.TEXT, OutputStream.ITEMS
Replica = ProcessReplica | ThreadReplica


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def running(kind: str, name: str, logs_cap: int = 1 << 20) -> AsyncIterator[Replica]:
    """A started replica of the double `name`: a process ("process") or a thread ("thread")."""
    replica: Replica
    if kind == "process":
        replica = ProcessReplica(version(name), FAKE_WORKER, logs_cap)
    else:
        replica = ThreadReplica(version(name), load, logs_cap)
    try:
        assert await replica.start() == SIGNATURE
        yield replica
    finally:
        await replica.stop()


class Seen:
    """What a batch sent, in the order it arrived: ("chunk", Chunk) then ("done", outcomes)."""

    def __init__(self, react: Callable[[Chunk], None] = lambda chunk: None) -> None:
        self.events: list[tuple[str, Any]] = []
        self._react = react

    def __call__(self, chunk: Chunk) -> None:
        self.events.append(("chunk", chunk))
        self._react(chunk)

    async def run(self, replica: Replica, inputs: list[dict[str, Any]]) -> list[Outcome]:
        outcomes = await replica.predict(inputs, self)
        self.events.append(("done", outcomes))
        return outcomes

    def chunks(self, index: int = 0) -> list[Chunk]:
        return [c for kind, c in self.events if kind == "chunk" and c.index == index]

    def items(self, index: int = 0) -> list[Any]:
        return [item for c in self.chunks(index) for item in c.items]

    def logs(self, index: int = 0) -> str:
        return "".join(c.logs for c in self.chunks(index))


KINDS = ["process", "thread"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["streams", "streams-async"])
async def test_a_streamed_output_arrives_item_by_item_then_whole(kind: str, name: str) -> None:
    seen = Seen()
    async with running(kind, name) as replica:
        (outcome,) = await seen.run(replica, [{"items": ["a", "b", "c"]}])
    # Each item, then the line printed before the next, all before the batch's outcome.
    sent = [(c.items, c.mode, c.logs) for c in seen.chunks()]
    assert sent == [
        (("a",), TEXT, ""),
        ((), None, "sent a\n"),
        (("b",), TEXT, ""),
        ((), None, "sent b\n"),
        (("c",), TEXT, ""),
        ((), None, "sent c\n"),
    ]
    assert seen.events[-1] == ("done", [outcome])
    assert (outcome.output, outcome.streamed, outcome.error) == ("abc", TEXT, None)
    assert outcome.logs == "", "every line went in a chunk"


@pytest.mark.parametrize("kind", KINDS)
async def test_without_a_listener_the_outcome_carries_the_whole_stream_and_logs(
    kind: str,
) -> None:
    async with running(kind, "streams") as replica:
        (outcome,) = await replica.predict([{"items": [1, {"x": 2}], "mode": "items"}])
    assert (outcome.output, outcome.streamed) == ([1, {"x": 2}], ITEMS)
    if kind == "process":  # a thread replica takes no prints without a caller for them
        assert outcome.logs == "sent 1\nsent {'x': 2}\n"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_batch_of_streams_is_driven_in_turn_each_to_its_own_index(kind: str) -> None:
    seen = Seen()
    inputs = [{"items": ["a1", "a2"]}, {"items": ["b1", "b2", "b3"]}, {"items": ["c1"]}]
    async with running(kind, "streams") as replica:
        outcomes = await seen.run(replica, inputs)
    assert [seen.items(i) for i in range(3)] == [["a1", "a2"], ["b1", "b2", "b3"], ["c1"]]
    # Round robin: every stream's first item comes before any stream's second.
    order = [c.items[0] for kind, c in seen.events if kind == "chunk" and c.items]
    assert order[:3] == ["a1", "b1", "c1"]
    assert [o.output for o in outcomes] == ["a1a2", "b1b2b3", "c1"]
    # What each stream printed while it was advanced is its own input's, line by line.
    assert [seen.logs(i) for i in range(3)] == [
        "sent a1\nsent a2\n",
        "sent b1\nsent b2\nsent b3\n",
        "sent c1\n",
    ]
    assert [o.logs for o in outcomes] == ["", "", ""]


async def test_a_chunk_too_large_for_the_loop_is_read_on_a_thread_and_still_in_order() -> None:
    seen = Seen()
    size = LARGE_MESSAGE_BYTES + 1
    async with running("process", "streams") as replica:
        (outcome,) = await seen.run(replica, [{"items": ["x", "y"], "times": size}])
        (after,) = await replica.predict([{"items": ["z"]}], Seen())
    assert [(c.items[0][0], len(c.items[0])) for c in seen.chunks() if c.items] == [
        ("x", size),
        ("y", size),
    ]
    assert seen.logs() == "sent x\nsent y\n"
    assert outcome.output == "x" * size + "y" * size
    assert after.output == "z", "the reader is back on the loop"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stream_raising_midway_fails_its_input_after_the_items_it_sent(kind: str) -> None:
    seen = Seen()
    inputs = [{"items": ["a", "b", "c"], "raise_after": 2}, {"items": ["x", "y"]}]
    async with running(kind, "streams") as replica:
        failed, fine = await seen.run(replica, inputs)
    assert seen.items(0) == ["a", "b"]
    assert (failed.error, failed.output, failed.streamed) == (
        "ValueError: gave up after 2",
        None,
        TEXT,
    )
    assert (fine.output, fine.error) == ("xy", None), "the other input of its batch goes on"


@pytest.mark.parametrize("kind", KINDS)
async def test_each_printed_line_arrives_while_the_model_still_runs(
    kind: str, tmp_path: Path
) -> None:
    gate = str(tmp_path / "saw")

    def let_it_go_on(chunk: Chunk) -> None:
        # The model waits for this before printing its next line: a line held back until the
        # batch ended would leave it waiting, and the test failing.
        if chunk.logs.startswith("line "):
            Path(f"{gate}-{chunk.logs.split()[1]}").touch()

    seen = Seen(let_it_go_on)
    async with running(kind, "prints-lines") as replica:
        (outcome,) = await seen.run(replica, [{"lines": 3, "gate": gate}])
    assert [c.logs for c in seen.chunks()] == ["line 0\n", "line 1\n", "line 2\n"]
    assert seen.events[-1][0] == "done"
    # The partial last line is the one thing no chunk carried.
    assert (outcome.output, outcome.logs) == ("done", "no newline")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stream", [False, True])
async def test_an_inputs_logs_are_cut_at_the_cap_with_one_line_saying_so(
    kind: str, stream: bool
) -> None:
    seen = Seen()
    async with running(kind, "prints-much", logs_cap=1050) as replica:
        (outcome,) = await seen.run(replica, [{"chars": 5000, "stream": stream}])
    logs = seen.logs() + outcome.logs
    kept = "".join(str(n) * 99 + "\n" for n in range(10)) + "0" * 50
    assert logs == kept + "\n" + cut_note(1050)
    assert cut_note(1050) == (
        "[foretell] logs cut: more than 1050 characters (max_prediction_logs_chars)\n"
    )
    assert outcome.error is None


async def test_an_interrupt_mid_stream_cancels_the_batch_after_what_it_sent(
    tmp_path: Path,
) -> None:
    interrupted: list[bool] = []
    replica: Replica

    def interrupt_after_the_first(chunk: Chunk) -> None:
        if chunk.items and not interrupted:
            interrupted.append(replica.interrupt())

    seen = Seen(interrupt_after_the_first)
    # The gate of the second item never opens: only the interrupt ends the stream.
    inputs = [{"items": ["a", "b"], "gate": str(tmp_path / "never")}, {"items": ["x", "y"]}]
    async with running("process", "streams") as replica:
        outcomes = await seen.run(replica, inputs)
        # It still serves: the interrupt ended the batch, not the process.
        (after,) = await replica.predict([{"items": ["z"]}])
    assert interrupted == [True]
    assert seen.items(0) == ["a"]
    canceled = "Interrupted: the prediction was canceled"
    assert [o.error for o in outcomes] == [canceled, canceled]
    assert after.output == "z"


async def test_an_interrupt_stops_a_thread_replicas_stream_at_its_next_item(
    tmp_path: Path,
) -> None:
    # A thread cannot be stopped, but a generator can between items: a canceled stream that
    # yields on forever (here: its third item's gate never opens) held the replica for good.
    interrupted: list[bool] = []
    replica: Replica

    def interrupt_after_the_first(chunk: Chunk) -> None:
        if chunk.items and not interrupted:
            interrupted.append(replica.interrupt())
            (tmp_path / "gate-1").touch()  # the second item comes, the interrupt before it ends

    seen = Seen(interrupt_after_the_first)
    inputs = [{"items": ["a", "b", "c"], "gate": str(tmp_path / "gate")}]
    async with running("thread", "streams") as replica:
        async with asyncio.timeout(60):
            (outcome,) = await seen.run(replica, inputs)
            (after,) = await replica.predict([{"items": ["z"]}])
    assert interrupted == [True]
    assert seen.items(0)[0] == "a"
    assert "c" not in seen.items(0)
    assert outcome.error == "Interrupted: the prediction was canceled"
    assert outcome.streamed is TEXT
    assert after.output == "z"


async def test_the_servers_own_output_is_untouched_by_a_thread_replicas_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = str(tmp_path / "saw")

    def print_as_the_server(chunk: Chunk) -> None:
        # The loop's thread prints while the model's thread is capturing its own prints.
        print(f"server saw {chunk.logs.strip()}")
        Path(f"{gate}-{chunk.logs.split()[1]}").touch()

    seen = Seen(print_as_the_server)
    async with running("thread", "prints-lines") as replica:
        await seen.run(replica, [{"lines": 2, "gate": gate}])
    print("server after")
    assert sys.stdout.buffer is not None, "the rest of the real stream is there"
    out = capsys.readouterr().out
    assert out == "server saw line 0\nserver saw line 1\nserver after\n"
    assert seen.logs() == "line 0\nline 1\n"


async def test_the_scheduler_routes_each_inputs_chunks_to_its_own_job() -> None:
    async with running("process", "streams") as replica:
        scheduler = Scheduler("acme/streams:1", Batching(max_batch_size=3))
        got: dict[int, list[Any]] = {0: [], 1: [], 2: []}
        jobs: list[Job] = []

        def collect(n: int) -> Callable[[Chunk], None]:
            def on_chunk(chunk: Chunk) -> None:
                got[n].extend(chunk.items)
                if n == 1:  # canceled on its first item: the rest of its chunks are dropped
                    scheduler.cancel(jobs[1])

            return on_chunk

        inputs = [{"items": [f"{n}a", f"{n}b", f"{n}c"]} for n in range(3)]
        jobs.extend(Job(str(n), i, on_chunk=collect(n)) for n, i in enumerate(inputs))
        for job in jobs:
            scheduler.submit(job)
        scheduler.attach(replica)
        outcomes = await asyncio.gather(*(j.result for j in jobs))
        await scheduler.close()
    assert got == {0: ["0a", "0b", "0c"], 1: ["1a"], 2: ["2a", "2b", "2c"]}
    assert [o.output for o in outcomes] == ["0a0b0c", "1a1b1c", "2a2b2c"]
