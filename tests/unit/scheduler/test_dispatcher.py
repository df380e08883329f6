"""The scheduler batches queued jobs, spreads them over free replicas, honours cancels and
replaces a crashed replica."""

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from foretell.errors import WorkerCrashed
from foretell.manifest import Batching
from foretell.scheduler import Job, QueuePlace, Scheduler
from foretell.workers import Outcome


class FakeReplica:
    """Echoes inputs after `delay_s`; crashes on an input holding {"crash": True}; waits on
    `gate` when given, so a test can hold a batch 'running'."""

    def __init__(self, delay_s: float = 0.01, setup_time: float = 0.25) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.starts = 0
        self.interrupts = 0
        self.delay_s = delay_s
        self.setup_time = setup_time
        self.gate: asyncio.Event | None = None
        self.alive = True

    async def start(self) -> None:
        self.starts += 1
        self.alive = True

    async def predict(self, inputs: list[dict[str, Any]]) -> list[Outcome]:
        self.batches.append(inputs)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.delay_s)
        if any(i.get("crash") for i in inputs):
            raise WorkerCrashed("acme/churn:1", -9)
        return [Outcome(output=i) for i in inputs]

    def interrupt(self) -> bool:
        self.interrupts += 1
        return True


async def restart_ok(replica: Any) -> bool:
    await replica.start()
    return True


async def restart_never(replica: Any) -> bool:
    return False


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def submit_all(scheduler: Scheduler, inputs: list[dict[str, Any]]) -> list[Job]:
    jobs = [Job(str(n), i) for n, i in enumerate(inputs)]
    for job in jobs:
        scheduler.submit(job)
    return jobs


def test_jobs_queued_together_run_in_batches_up_to_the_limit() -> None:
    async def scenario() -> tuple[list[int], list[Any]]:
        replica = FakeReplica()
        scheduler = Scheduler("acme/churn:1", Batching(max_batch_size=4))
        jobs = submit_all(scheduler, [{"n": n} for n in range(10)])
        scheduler.attach(replica)  # type: ignore[arg-type]
        outcomes = await asyncio.gather(*(j.result for j in jobs))
        await scheduler.close()
        return [len(b) for b in replica.batches], [o.output for o in outcomes]

    sizes, outputs = run(scenario())
    assert sizes == [4, 4, 2]
    assert outputs == [{"n": n} for n in range(10)]


def test_a_lone_request_reaches_an_idle_replica_without_waiting_for_a_window() -> None:
    async def scenario() -> int:
        replica = FakeReplica()
        frozen = 100.0  # the clock never moves: any window would never close
        scheduler = Scheduler("acme/churn:1", Batching(max_batch_size=32), clock=lambda: frozen)
        scheduler.attach(replica)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        submit_all(scheduler, [{"n": 0}])
        for _ in range(3):
            await asyncio.sleep(0)
        reached = len(replica.batches)
        await scheduler.close()
        return reached

    assert run(scenario()) == 1


def test_requests_arriving_while_the_replica_is_busy_form_the_next_batch() -> None:
    async def scenario() -> list[int]:
        replica = FakeReplica()
        replica.gate = asyncio.Event()
        scheduler = Scheduler("acme/churn:1", Batching(max_batch_size=8))
        scheduler.attach(replica)  # type: ignore[arg-type]
        first = submit_all(scheduler, [{"n": 0}])
        await asyncio.sleep(0.005)
        later = submit_all(scheduler, [{"n": n} for n in range(1, 6)])
        replica.gate.set()
        await asyncio.gather(*(j.result for j in first + later))
        await scheduler.close()
        return [len(b) for b in replica.batches]

    assert run(scenario()) == [1, 5]


def test_on_start_carries_the_setup_time_only_for_a_fresh_replicas_first_batch() -> None:
    async def scenario() -> list[float]:
        seen: list[float] = []
        scheduler = Scheduler("acme/churn:1", Batching())
        scheduler.attach(FakeReplica(setup_time=0.25))  # type: ignore[arg-type]
        for n in range(3):
            job = Job(str(n), {"n": n}, on_start=seen.append)
            scheduler.submit(job)
            await job.result
        await scheduler.close()
        return seen

    assert run(scenario()) == [0.25, 0.0, 0.0]


def test_busy_replicas_get_no_more_work_and_free_ones_share_the_load() -> None:
    async def scenario() -> tuple[int, int, float]:
        a, b = FakeReplica(delay_s=0.1), FakeReplica(delay_s=0.1)
        scheduler = Scheduler("acme/churn:1", Batching(max_batch_size=1))
        scheduler.attach(a)  # type: ignore[arg-type]
        scheduler.attach(b)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        started = loop.time()
        jobs = submit_all(scheduler, [{"n": 0}, {"n": 1}])
        await asyncio.gather(*(j.result for j in jobs))
        elapsed = loop.time() - started
        await scheduler.close()
        return len(a.batches), len(b.batches), elapsed

    on_a, on_b, elapsed = run(scenario())
    assert (on_a, on_b) == (1, 1)
    assert elapsed < 0.19  # side by side, not one after the other


def test_a_canceled_queued_job_leaves_the_queue_and_never_runs() -> None:
    async def scenario() -> tuple[list[list[dict[str, Any]]], int]:
        replica = FakeReplica()
        scheduler = Scheduler("acme/churn:1", Batching(max_batch_size=8))
        jobs = submit_all(scheduler, [{"n": 0}, {"n": 1}, {"n": 2}])
        scheduler.cancel(jobs[1])
        depth = scheduler.depth
        scheduler.attach(replica)  # type: ignore[arg-type]
        await asyncio.gather(jobs[0].result, jobs[2].result)
        await scheduler.close()
        return replica.batches, depth

    batches, depth = run(scenario())
    assert batches == [[{"n": 0}, {"n": 2}]]
    assert depth == 2


def test_a_running_batch_is_interrupted_only_once_all_its_jobs_are_canceled() -> None:
    async def scenario() -> list[int]:
        replica = FakeReplica()
        replica.gate = asyncio.Event()
        scheduler = Scheduler("acme/churn:1", Batching(max_batch_size=2))
        jobs = submit_all(scheduler, [{"n": 0}, {"n": 1}])
        scheduler.attach(replica)  # type: ignore[arg-type]
        await asyncio.sleep(0.005)
        scheduler.cancel(jobs[0])
        counts = [replica.interrupts]
        scheduler.cancel(jobs[1])
        counts.append(replica.interrupts)
        replica.gate.set()
        await scheduler.close()
        return counts

    assert run(scenario()) == [0, 1]


def test_place_says_where_a_job_waits() -> None:
    async def scenario() -> list[QueuePlace | None]:
        scheduler = Scheduler("acme/churn:1", Batching())
        jobs = submit_all(scheduler, [{"n": n} for n in range(3)])
        places = [scheduler.place(j) for j in jobs]
        scheduler.cancel(jobs[0])
        places.append(scheduler.place(jobs[2]))
        await scheduler.close()
        return places

    assert run(scenario()) == [
        QueuePlace(0, 3),
        QueuePlace(1, 3),
        QueuePlace(2, 3),
        QueuePlace(1, 2),
    ]


def test_each_batch_duration_is_reported() -> None:
    async def scenario() -> list[float]:
        durations: list[float] = []
        scheduler = Scheduler("acme/churn:1", Batching(), on_batch=durations.append)
        scheduler.attach(FakeReplica(delay_s=0.02))  # type: ignore[arg-type]
        jobs = submit_all(scheduler, [{"n": 0}])
        await jobs[0].result
        await scheduler.close()
        return durations

    (duration,) = run(scenario())
    assert 0.02 <= duration < 0.5


def test_a_crash_fails_its_batch_and_the_replica_is_replaced_fresh() -> None:
    async def scenario() -> tuple[FakeReplica, list[float], Any]:
        replica = FakeReplica()
        seen: list[float] = []
        scheduler = Scheduler("acme/churn:1", Batching(), restart=restart_ok)
        doomed = Job("doomed", {"crash": True}, on_start=seen.append)
        after = Job("after", {"n": 1}, on_start=seen.append)
        scheduler.submit(doomed)
        scheduler.attach(replica)  # type: ignore[arg-type]
        with pytest.raises(WorkerCrashed):
            await doomed.result
        scheduler.submit(after)
        outcome = await after.result
        await scheduler.close()
        return replica, seen, outcome.output

    replica, seen, output = run(scenario())
    assert replica.starts == 1
    assert seen == [0.25, 0.25]  # the replacement loaded the model again
    assert output == {"n": 1}


class BrokenPipeReplica(FakeReplica):
    """Raises a foreign error once, as a pipe to a dying process does."""

    async def predict(self, inputs: list[dict[str, Any]]) -> list[Outcome]:
        if not self.batches:
            self.batches.append(inputs)
            raise BrokenPipeError("pipe closed")
        return await super().predict(inputs)


def test_a_foreign_error_fails_its_batch_and_dispatch_goes_on() -> None:
    async def scenario() -> tuple[BaseException | None, Any]:
        scheduler = Scheduler("acme/churn:1", Batching(), restart=restart_ok)
        first, second = submit_all(scheduler, [{"n": 0}, {"n": 1}])
        scheduler.attach(BrokenPipeReplica())  # type: ignore[arg-type]
        with pytest.raises(WorkerCrashed, match="sending work to a replica of 'acme/churn:1'"):
            await first.result
        outcome = await second.result
        await scheduler.close()
        return first.result.exception(), outcome.output

    error, output = run(scenario())
    assert isinstance(error, WorkerCrashed)
    assert output == {"n": 1}


def test_losing_the_last_replica_fails_queued_and_later_jobs_and_says_why() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        reasons: list[str] = []
        scheduler = Scheduler(
            "acme/churn:1", Batching(), restart=restart_never, on_unavailable=reasons.append
        )
        jobs = submit_all(scheduler, [{"crash": True}, {"n": 1}, {"n": 2}])
        scheduler.attach(FakeReplica())  # type: ignore[arg-type]
        results = await asyncio.gather(*(j.result for j in jobs), return_exceptions=True)
        late = Job("late", {"n": 3})
        scheduler.submit(late)
        with pytest.raises(WorkerCrashed, match="could not be restarted"):
            await late.result
        await scheduler.close()
        return reasons, [type(r).__name__ for r in results]

    reasons, results = run(scenario())
    assert results == ["WorkerCrashed"] * 3
    assert reasons == [
        "every replica of model 'acme/churn:1' died and could not be restarted; "
        "see the deployment's logs"
    ]


def test_losing_one_of_two_replicas_keeps_serving_on_the_other() -> None:
    async def scenario() -> list[Any]:
        scheduler = Scheduler("acme/churn:1", Batching(), restart=restart_never)
        scheduler.attach(FakeReplica())  # type: ignore[arg-type]
        scheduler.attach(FakeReplica())  # type: ignore[arg-type]
        (doomed,) = submit_all(scheduler, [{"crash": True}])
        with pytest.raises(WorkerCrashed):
            await doomed.result
        later = submit_all(scheduler, [{"n": n} for n in range(3)])
        outcomes = await asyncio.gather(*(j.result for j in later))
        await scheduler.close()
        return [o.output for o in outcomes]

    assert run(scenario()) == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_a_replica_that_died_idle_is_replaced_before_it_gets_work() -> None:
    async def scenario() -> tuple[int, Any, int]:
        replica = FakeReplica()
        scheduler = Scheduler("acme/churn:1", Batching(), restart=restart_ok)
        scheduler.attach(replica)  # type: ignore[arg-type]
        replica.alive = False  # killed between batches
        (job,) = submit_all(scheduler, [{"n": 1}])
        outcome = await job.result
        await scheduler.close()
        return replica.starts, outcome.output, len(replica.batches)

    starts, output, batches = run(scenario())
    assert starts == 1
    assert output == {"n": 1}
    assert batches == 1


def test_a_replica_reported_dead_while_idle_is_replaced_with_no_work_queued() -> None:
    async def scenario() -> int:
        replica = FakeReplica()
        scheduler = Scheduler("acme/churn:1", Batching(), restart=restart_ok)
        scheduler.attach(replica)  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        replica.alive = False
        replica.on_exit()  # type: ignore[attr-defined]
        for _ in range(10):
            await asyncio.sleep(0)
        await scheduler.close()
        return replica.starts

    assert run(scenario()) == 1
