"""The scheduler does what the scaling rule says: starts a replica for work queued with none
running (its first batch reports the setup time), fails that work as data when the start fails,
grows one at a time while the queue waits, and lets idle replicas go. The clock is the test's:
`rescale` with the same range is the cue to look again after moving it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from foretell.errors import ModelLoadFailed
from foretell.manifest import Batching, ReplicaRange
from foretell.scheduler import Job, Scaling, Scheduler
from foretell.workers import Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeReplica:
    """Answers each input with itself once `gate` is set (set from the start unless held)."""

    def __init__(self, setup_time: float = 0.5) -> None:
        self.setup_time = setup_time
        self.alive = True
        self.gate = asyncio.Event()
        self.gate.set()

    async def predict(self, inputs: list[dict[str, Any]]) -> list[Outcome]:
        await self.gate.wait()
        return [Outcome(output=i) for i in inputs]

    def interrupt(self) -> bool:
        return False


class FakePool:
    """What a deployment does for the scheduler: start (attach) and stop fake replicas; a
    start waits on `opening` and fails with `failure` when set."""

    def __init__(self) -> None:
        self.scheduler: Scheduler | None = None
        self.started: list[FakeReplica] = []
        self.stopped: list[FakeReplica] = []
        self.opening = asyncio.Event()
        self.opening.set()
        self.failure: ModelLoadFailed | None = None
        self.hold_batches = False
        self.attempts = 0

    async def start(self) -> None:
        self.attempts += 1
        await self.opening.wait()
        if self.failure is not None:
            raise self.failure
        replica = FakeReplica()
        if self.hold_batches:
            replica.gate.clear()
        self.started.append(replica)
        assert self.scheduler is not None
        self.scheduler.attach(replica)  # type: ignore[arg-type]

    async def stop(self, replica: Any) -> None:
        self.stopped.append(replica)


def scheduler(pool: FakePool, replicas: ReplicaRange, clock: Clock, batch: int = 1) -> Scheduler:
    made = Scheduler(
        "acme/churn:1",
        Batching(max_batch_size=batch),
        clock=clock,
        scaling=Scaling(replicas, pool.start, pool.stop),
    )
    pool.scheduler = made
    return made


async def settle() -> None:
    """Let every ready task run (the dispatch loop and what it spawned), without sleeping."""
    for _ in range(20):
        await asyncio.sleep(0)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


TO_ZERO = ReplicaRange(min=0, max=2, idle_s=30, target_wait_s=2)


def test_a_job_queued_with_none_running_starts_one_and_gets_its_setup_time() -> None:
    async def scenario() -> tuple[int, list[float], Any]:
        pool, clock = FakePool(), Clock()
        made = scheduler(pool, TO_ZERO, clock)
        setup: list[float] = []
        job = Job("1", {"n": 1}, on_start=setup.append)
        made.submit(job)
        outcome = await job.result
        await made.close()
        return len(pool.started), setup, outcome.output

    started, setup, output = run(scenario())
    assert started == 1
    assert setup == [0.5]
    assert output == {"n": 1}


def test_a_job_that_waited_for_the_start_from_zero_starts_no_second_replica() -> None:
    async def scenario() -> int:
        pool, clock = FakePool(), Clock()
        pool.opening.clear()
        made = scheduler(pool, TO_ZERO, clock)
        job = Job("1", {"n": 1})
        made.submit(job)
        await settle()
        clock.now += 10.0  # the start took far longer than target_wait_s
        pool.opening.set()
        await job.result
        await settle()
        await made.close()
        return len(pool.started)

    assert run(scenario()) == 1


def test_a_failed_start_fails_what_waited_as_data_and_the_next_job_tries_again() -> None:
    async def scenario() -> tuple[BaseException | None, int, Any]:
        pool, clock = FakePool(), Clock()
        pool.failure = ModelLoadFailed("acme/churn:1", "setup raised ValueError")
        made = scheduler(pool, TO_ZERO, clock)
        first = Job("1", {"n": 1})
        made.submit(first)
        error: BaseException | None = None
        try:
            await first.result
        except ModelLoadFailed as exc:
            error = exc
        pool.failure = None
        clock.now += 1.0  # past the backoff after one failed start
        second = Job("2", {"n": 2})
        made.submit(second)
        outcome = await second.result
        await made.close()
        return error, len(pool.started), outcome.output

    error, started, output = run(scenario())
    assert isinstance(error, ModelLoadFailed)
    assert "setup raised ValueError" in str(error)
    assert started == 1
    assert output == {"n": 2}


def test_a_failed_start_fails_no_job_while_another_start_is_coming() -> None:
    async def scenario() -> Any:
        pool, clock = FakePool(), Clock()
        made = scheduler(pool, ReplicaRange(min=2, max=2), clock)
        opening = asyncio.Event()

        async def slow_start() -> None:  # as Deployment.start's first replicas are
            await opening.wait()
            made.attach(FakeReplica())  # type: ignore[arg-type]

        first = asyncio.create_task(made.starting(slow_start))
        pool.failure = ModelLoadFailed("acme/churn:1", "out of GPU memory")
        job = Job("1", {"n": 1})
        made.submit(job)  # the rule starts the second of min 2: it fails at once
        await settle()
        waited = not job.result.done()
        opening.set()
        outcome = await job.result
        await first
        await made.close()
        return waited, pool.attempts, outcome.output

    assert run(scenario()) == (True, 1, {"n": 1})


def test_a_start_canceled_before_it_runs_makes_no_start() -> None:
    async def scenario() -> int:
        pool, clock = FakePool(), Clock()
        made = scheduler(pool, ReplicaRange(min=1, max=1), clock)
        made_starts = []

        async def start() -> None:
            made_starts.append(1)

        # An unload cancels a deployment's start before its gathered starts first run: a
        # coroutine made for it then would be left never awaited (a RuntimeWarning at exit).
        canceled = asyncio.create_task(made.starting(lambda: start()))
        canceled.cancel()
        await asyncio.gather(canceled, return_exceptions=True)
        await made.close()
        return len(made_starts)

    assert run(scenario()) == 0


def test_starts_that_keep_failing_back_off_doubling_while_others_serve() -> None:
    async def scenario() -> list[int]:
        pool, clock = FakePool(), Clock()
        made = scheduler(pool, ReplicaRange(min=1, max=3), clock)
        made.rescale(ReplicaRange(min=1, max=3))
        await settle()  # one serves
        pool.failure = ModelLoadFailed("acme/churn:1", "out of GPU memory")
        before = pool.attempts
        made.rescale(ReplicaRange(min=3, max=3))  # two more wanted: each start fails
        await settle()
        tries = [pool.attempts - before]  # the first try
        for step in (0.5, 0.5, 1.0, 1.0, 1.0, 1.0):  # backoffs of 1 s, then 2 s, then 4 s
            clock.now += step
            made.rescale(ReplicaRange(min=3, max=3))
            await settle()
            tries.append(pool.attempts - before)
        await made.close()
        return tries

    assert run(scenario()) == [1, 1, 2, 2, 3, 3, 3]


def test_a_waiting_queue_grows_one_replica_at_a_time_up_to_max() -> None:
    async def scenario() -> list[int]:
        pool, clock = FakePool(), Clock()
        pool.hold_batches = True
        made = scheduler(pool, TO_ZERO, clock)
        jobs = [Job(str(n), {"n": n}) for n in range(6)]
        for job in jobs:
            made.submit(job)
        await settle()
        counts = [len(pool.started)]  # one, for the work queued with none running
        pool.opening.clear()  # the next start takes its time
        clock.now += 1.0  # under target_wait_s
        made.rescale(TO_ZERO)
        await settle()
        counts.append(len(pool.started))
        clock.now += 5.0  # past it: a second one starts ...
        made.rescale(TO_ZERO)
        await settle()
        clock.now += 5.0  # ... and while it starts, no third
        made.rescale(TO_ZERO)
        await settle()
        counts.append(len(pool.started))
        pool.opening.set()
        await settle()
        counts.append(len(pool.started))
        clock.now += 60.0  # max is 2: never a third, however long the queue waits
        made.rescale(TO_ZERO)
        await settle()
        counts.append(len(pool.started))
        for replica in pool.started:
            replica.gate.set()
        await asyncio.gather(*(j.result for j in jobs))
        await made.close()
        return counts

    assert run(scenario()) == [1, 1, 1, 2, 2]


def test_idle_replicas_stop_after_idle_s_down_to_min_zero() -> None:
    async def scenario() -> list[tuple[int, int]]:
        pool, clock = FakePool(), Clock()
        made = scheduler(pool, TO_ZERO, clock)
        job = Job("1", {"n": 1})
        made.submit(job)
        await job.result
        await settle()
        seen = [(made.replicas, len(pool.stopped))]
        clock.now += 29.0
        made.rescale(TO_ZERO)
        await settle()
        seen.append((made.replicas, len(pool.stopped)))
        clock.now += 1.0
        made.rescale(TO_ZERO)
        await settle()
        seen.append((made.replicas, len(pool.stopped)))
        await made.close()
        return seen

    assert run(scenario()) == [(1, 0), (1, 0), (0, 1)]


def test_min_keeps_that_many_and_a_lowered_max_lets_the_extra_go_at_once() -> None:
    async def scenario() -> list[tuple[int, int]]:
        pool, clock = FakePool(), Clock()
        made = scheduler(pool, ReplicaRange(min=1, max=3, idle_s=30), clock)
        made.rescale(ReplicaRange(min=3, max=3, idle_s=30))
        await settle()
        seen = [(made.replicas, len(pool.stopped))]
        made.rescale(ReplicaRange(min=1, max=1, idle_s=30))
        await settle()
        seen.append((made.replicas, len(pool.stopped)))
        clock.now += 1e6
        made.rescale(ReplicaRange(min=1, max=1, idle_s=30))
        await settle()
        seen.append((made.replicas, len(pool.stopped)))
        await made.close()
        return seen

    assert run(scenario()) == [(3, 0), (1, 2), (1, 2)]
