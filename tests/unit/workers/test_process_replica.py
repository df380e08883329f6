"""ProcessReplica against real child processes whose models are doubles (fake_worker.py): a batch
answered, a child that dies in setup, mid-batch or while idle, a batch past its timeout, an
interrupt, and the lifeline: the parent pid, the spawning thread, the parent's end closing."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from worker_doubles import SIGNATURE, version

from foretell.errors import ModelLoadFailed, WorkerCrashed
from foretell.workers import Outcome, ProcessReplica
from foretell.workers.lifeline import EXIT_PARENT_GONE

pytestmark = pytest.mark.anyio

FAKE_WORKER = (sys.executable, str(Path(__file__).with_name("fake_worker.py")))
# Generous bounds on a loaded machine; each test waits for an event, not for this long.
WITHIN_S = 20.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def running(
    name: str, command: tuple[str, ...] = FAKE_WORKER, **timeouts: float
) -> AsyncIterator[ProcessReplica]:
    """A started replica of the double `name`; stopped (its process gone) on the way out."""
    replica = ProcessReplica(version(name, **timeouts), command)
    try:
        assert await replica.start() == SIGNATURE
        yield replica
    finally:
        await replica.stop()


def pid_of(replica: ProcessReplica) -> int:
    assert replica._process is not None
    return replica._process.pid


def command_line(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as file:
        return file.read().decode().split("\0")[:-1]


async def busy(replica: ProcessReplica, seconds: float) -> asyncio.Task[list[Outcome]]:
    """A batch of the sleeps double running on `replica`, once it has been sent."""
    task = asyncio.create_task(replica.predict([{"seconds": seconds}]))
    while not replica._busy:
        assert not task.done(), task
        await asyncio.sleep(0)
    return task


async def test_a_replica_runs_batches_then_exits_when_stopped() -> None:
    async with running("echo") as replica:
        (outcome,) = await replica.predict([{"n": 1}])
        assert (outcome.output, outcome.error) == ({"n": 1}, None)
        assert replica.alive
        process = replica._process
        # The lifeline's parent pid: this process, the one that must outlive it.
        assert command_line(pid_of(replica))[-2:] == [str(os.getpid()), "acme/echo:1"]
    assert process is not None
    assert process.returncode == 0, "it took Shutdown and exited by itself"
    assert not replica.alive


async def test_a_child_killed_mid_batch_fails_it_as_a_crash_naming_sigkill() -> None:
    async with running("sleeps") as replica:
        task = await busy(replica, 60)
        os.kill(pid_of(replica), signal.SIGKILL)
        with pytest.raises(WorkerCrashed) as crashed:
            await asyncio.wait_for(task, WITHIN_S)
        assert crashed.value.exitcode == -signal.SIGKILL
        assert "SIGKILL" in crashed.value.message
        assert not replica.alive


async def test_a_model_that_ends_its_process_mid_batch_is_reported_with_the_exit_code() -> None:
    async with running("exits-in-predict") as replica:
        with pytest.raises(WorkerCrashed) as crashed:
            await asyncio.wait_for(replica.predict([{"n": 1}]), WITHIN_S)
        assert crashed.value.exitcode == 3
        assert crashed.value.message == (
            "the replica of model 'acme/exits-in-predict:1' exited (code 3) mid-prediction"
        )


async def test_a_child_that_died_idle_is_noticed_and_its_next_batch_is_never_sent() -> None:
    async with running("echo") as replica:
        exited = asyncio.Event()
        replica.on_exit = exited.set
        os.kill(pid_of(replica), signal.SIGKILL)
        await asyncio.wait_for(exited.wait(), WITHIN_S)
        assert not replica.alive
        with pytest.raises(WorkerCrashed) as crashed:
            await replica.predict([{"n": 1}])
        assert crashed.value.exitcode == -signal.SIGKILL


async def test_a_batch_past_its_timeout_kills_the_process_and_says_which_limit() -> None:
    async with running("sleeps", predict_s=0.5) as replica:
        process = replica._process
        with pytest.raises(WorkerCrashed) as crashed:
            await replica.predict([{"seconds": 60}])
        assert "ran longer than its 0.5 s limit (timeouts.predict_s)" in crashed.value.message
        assert process is not None
        assert process.returncode == -signal.SIGKILL
        assert not replica.alive


async def test_an_interrupt_stops_the_running_batch_and_the_process_serves_on(
    tmp_path: Path,
) -> None:
    async with running("sleeps") as replica:
        pid = pid_of(replica)
        started = tmp_path / "started"
        task = asyncio.create_task(replica.predict([{"seconds": 60, "started": str(started)}]))
        while not started.exists():  # an interrupt before the model runs is not for it
            assert not task.done(), task
            await asyncio.sleep(0.01)
        assert replica.interrupt()
        outcomes = await asyncio.wait_for(task, WITHIN_S)
        assert [o.error for o in outcomes] == ["Interrupted: the prediction was canceled"]
        (after,) = await replica.predict([{"seconds": 0}])
        assert after.output == {"seconds": 0}
        assert pid_of(replica) == pid


async def test_a_setup_that_raises_fails_start_with_the_models_reason_and_traceback() -> None:
    replica = ProcessReplica(version("raises-in-setup"), FAKE_WORKER)
    with pytest.raises(ModelLoadFailed) as failed:
        await replica.start()
    assert failed.value.reason == "RuntimeError: no GPU"
    assert failed.value.traceback == "Traceback (fake)\n"
    assert not replica.alive


async def test_a_process_that_dies_in_setup_fails_start_naming_its_exit_code() -> None:
    replica = ProcessReplica(version("exits-in-setup"), FAKE_WORKER)
    with pytest.raises(ModelLoadFailed) as failed:
        await replica.start()
    assert failed.value.reason == "the replica process exited during setup (code 4)"


async def test_a_process_that_dies_before_reading_setup_fails_start_naming_its_exit_code() -> None:
    """Whether it is gone before Setup is written (a broken pipe) or after, it is a failed
    setup that names the code, not an OSError."""
    for _ in range(5):  # the child's exit races the write of Setup: try both orders
        replica = ProcessReplica(version("echo"), ("/bin/sh", "-c", "exit 5"))
        with pytest.raises(ModelLoadFailed) as failed:
            await replica.start()
        assert failed.value.reason == "the replica process exited during setup (code 5)"


async def test_a_replica_outlives_the_executor_threads_of_its_loop() -> None:
    """The parent-death signal fires when the *thread* that spawned the child exits: a replica
    spawned from an executor's thread would be killed when that executor shuts down."""
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(2)
    loop.set_default_executor(executor)
    async with running("echo") as replica:
        executor.shutdown(wait=True)  # its threads exit
        loop.set_default_executor(ThreadPoolExecutor(2))
        (outcome,) = await replica.predict([{"n": 2}])
        assert outcome.output == {"n": 2}


async def test_a_busy_replica_exits_as_soon_as_the_parents_end_of_its_socket_closes() -> None:
    """What a SIGKILLed server leaves its replicas: the socket's other end closed, no message."""
    async with running("sleeps") as replica:
        process = replica._process
        assert process is not None
        await busy(replica, 60)
        conn = replica._conn
        assert conn is not None
        replica._detach()
        conn.close()
        try:
            code = await asyncio.to_thread(process.wait, WITHIN_S)
        finally:
            process.kill()  # stop() cannot once its end is closed: not left behind on failure
            await asyncio.to_thread(process.wait)
        assert code == EXIT_PARENT_GONE


def test_a_replica_told_of_a_parent_that_is_not_its_own_exits_before_serving() -> None:
    """Its parent died before the replica asked to be signalled: it was re-parented already."""
    parent_end, child_end = multiprocessing.Pipe(duplex=True)
    with parent_end, child_end:
        fd = child_end.fileno()
        command = [*FAKE_WORKER, str(fd), "1", "acme/echo:1"]  # pid 1 did not start it
        with subprocess.Popen(command, pass_fds=(fd,), stdin=subprocess.DEVNULL) as child:
            try:
                assert child.wait(WITHIN_S) == EXIT_PARENT_GONE
            finally:
                child.kill()
