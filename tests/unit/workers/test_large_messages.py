"""A large message (a batch or an outcome holding files) crosses a replica process's socket off
the server's event loop, so other requests are served meanwhile; a process that dies or is
stopped in the middle of one fails its batch as a crash, never a hang."""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import pytest
from test_process_replica import WITHIN_S, running
from worker_doubles import SIGNATURE, version

from foretell.domain.files import FileData
from foretell.errors import WorkerCrashed
from foretell.workers import ProcessReplica

pytestmark = pytest.mark.anyio

T = TypeVar("T")
SIZE = 64 << 20
SENDS_HALF = (sys.executable, str(Path(__file__).with_name("sends_half.py")))


# uvloop too, as the server runs: its add_reader makes the socket non-blocking (see start()),
# and the reader is added again after each large message.
@pytest.fixture(params=[("asyncio", {}), ("asyncio", {"use_uvloop": True})], ids=["", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    backend: tuple[str, dict[str, bool]] = request.param
    return backend


async def timed(work: Awaitable[T]) -> tuple[T, float, float]:
    """`work`'s result, the seconds it took, and the longest the loop went without running a
    task that asked to wake every millisecond meanwhile."""
    longest, finished = 0.0, asyncio.Event()

    async def tick() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not finished.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)  # the ticker's first clock reading comes before the work starts
    started = time.perf_counter()
    try:
        result = await work
    finally:
        finished.set()
        await ticker
    return result, time.perf_counter() - started, longest


# A stalled loop misses every tick while the message crosses: its longest gap is most of the
# whole call. Off the loop, only pickling the batch (a copy) holds it. A fraction of the call
# rather than a fixed time, since a busy machine slows both alike.
MOST = 0.5


async def test_a_large_batch_is_sent_while_the_loop_serves_others() -> None:
    async with running("measures") as replica:
        await replica.predict([{"file": FileData("w", "x", b"warm")}])
        batch = [{"file": FileData("big.bin", "application/octet-stream", bytes(SIZE))}]
        (outcome,), took, longest = await timed(replica.predict(batch))
    assert outcome.output == {"size": SIZE}
    assert longest < MOST * took, f"the loop stalled {longest:.3f} s of {took:.3f} s"


async def test_a_large_outcome_is_read_while_the_loop_serves_others() -> None:
    async with running("makes") as replica:
        await replica.predict([{"size": 1}])
        (outcome,), took, longest = await timed(replica.predict([{"size": SIZE}]))
        assert outcome.output.data == bytes(SIZE)
        # The reader is back, on a blocking socket again: the next outcome, under the large
        # size but over the socket's buffer, is read whole on the loop as before.
        (smaller,) = await replica.predict([{"size": 512 << 10}])
        assert smaller.output.data == bytes(512 << 10)
    assert longest < MOST * took, f"the loop stalled {longest:.3f} s of {took:.3f} s"


async def mid_message(replica: ProcessReplica) -> asyncio.Task[object]:
    """A batch whose large outcome the process has begun to send and will never finish."""
    task: asyncio.Task[object] = asyncio.create_task(replica.predict([{}]))
    while not replica._transfers:  # the parent's thread is reading the outcome
        assert not task.done(), task
        await asyncio.sleep(0.001)
    return task


async def test_a_process_killed_mid_message_fails_its_batch_as_a_crash() -> None:
    replica = ProcessReplica(version("sends-half"), SENDS_HALF)
    try:
        assert await replica.start() == SIGNATURE
        task = await mid_message(replica)
        assert replica._process is not None
        replica._process.kill()
        with pytest.raises(WorkerCrashed) as crashed:
            await asyncio.wait_for(task, WITHIN_S)
        assert crashed.value.exitcode == -9
        assert not replica._transfers
        assert not replica.alive
    finally:
        await replica.stop()


async def test_a_replica_stopped_mid_message_stops_and_its_batch_fails() -> None:
    replica = ProcessReplica(version("sends-half"), SENDS_HALF)
    try:
        assert await replica.start() == SIGNATURE
        task = await mid_message(replica)
        await asyncio.wait_for(replica.stop(), WITHIN_S)
        assert replica._conn is not None
        assert replica._conn.closed
        assert not replica._transfers
        with pytest.raises(WorkerCrashed):
            await asyncio.wait_for(task, WITHIN_S)
    finally:
        await replica.stop()


async def test_a_large_batch_the_process_never_reads_times_out_and_kills_it() -> None:
    replica = ProcessReplica(version("reads-nothing", predict_s=0.5), SENDS_HALF)
    try:
        assert await replica.start() == SIGNATURE
        batch = [{"file": FileData("big.bin", "application/octet-stream", bytes(SIZE))}]
        with pytest.raises(WorkerCrashed, match=r"\(timeouts\.predict_s\)"):
            await asyncio.wait_for(replica.predict(batch), WITHIN_S)
        assert not replica._transfers
        assert replica._process is not None
        assert replica._process.returncode == -9
    finally:
        await replica.stop()


async def test_a_send_its_process_broke_leaves_no_unretrieved_error_behind() -> None:
    """The thread sending a batch the process never read fails with it (BrokenPipeError): that
    error is the crash already reported, so it must not surface later as an unretrieved future's
    (which the loop reports whenever the future is collected, in whatever runs then)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        replica = ProcessReplica(version("reads-nothing", predict_s=0.5), SENDS_HALF)
        try:
            await replica.start()
            batch = [{"file": FileData("big.bin", "application/octet-stream", bytes(SIZE))}]
            with pytest.raises(WorkerCrashed):
                await asyncio.wait_for(replica.predict(batch), WITHIN_S)
        finally:
            await replica.stop()
        del replica
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [c.get("message") for c in reported] == []
