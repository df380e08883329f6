"""The scheduler batches queued jobs, skips canceled ones and replaces a crashed replica."""

import asyncio
from typing import Any

import pytest

from foretell.errors import WorkerCrashed
from foretell.manifest import Batching
from foretell.scheduler import Job, Scheduler
from foretell.workers import Outcome


class FakeReplica:
    """Echoes inputs; records batch sizes; crashes on an input holding {"crash": True}."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1

    async def predict(self, inputs: list[dict[str, Any]]) -> list[Outcome]:
        self.batches.append(inputs)
        await asyncio.sleep(0.01)
        if any(i.get("crash") for i in inputs):
            raise WorkerCrashed("acme/churn:1", -9)
        return [Outcome(output=i) for i in inputs]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def submit_all(scheduler: Scheduler, inputs: list[dict[str, Any]]) -> list[Job]:
    jobs = [Job(str(n), i) for n, i in enumerate(inputs)]
    for job in jobs:
        scheduler.submit(job)
    return jobs


def test_jobs_queued_together_run_in_batches_up_to_the_limit() -> None:
    async def scenario() -> tuple[list[int], list[Any]]:
        replica = FakeReplica()
        scheduler = Scheduler("acme/churn:1", Batching(max_batch_size=4, max_delay_ms=20))
        jobs = await submit_all(scheduler, [{"n": n} for n in range(10)])
        scheduler.attach(replica)  # type: ignore[arg-type]
        outcomes = await asyncio.gather(*(j.result for j in jobs))
        await scheduler.close()
        return [len(b) for b in replica.batches], [o.output for o in outcomes]

    sizes, outputs = run(scenario())
    assert sizes == [4, 4, 2]
    assert outputs == [{"n": n} for n in range(10)]


def test_on_start_fires_before_the_batch_runs() -> None:
    async def scenario() -> list[str]:
        events: list[str] = []
        scheduler = Scheduler("acme/churn:1", Batching())
        job = Job("a", {"x": 1}, on_start=lambda: events.append("started"))
        scheduler.submit(job)
        scheduler.attach(FakeReplica())  # type: ignore[arg-type]
        await job.result
        events.append("done")
        await scheduler.close()
        return events

    assert run(scenario()) == ["started", "done"]


def test_a_canceled_job_never_reaches_the_replica() -> None:
    async def scenario() -> list[list[dict[str, Any]]]:
        replica = FakeReplica()
        scheduler = Scheduler("acme/churn:1", Batching(max_batch_size=8))
        jobs = await submit_all(scheduler, [{"n": 0}, {"n": 1}, {"n": 2}])
        jobs[1].canceled = True
        scheduler.attach(replica)  # type: ignore[arg-type]
        await asyncio.gather(jobs[0].result, jobs[2].result)
        await scheduler.close()
        return replica.batches

    assert run(scenario()) == [[{"n": 0}, {"n": 2}]]


def test_a_crash_fails_its_batch_and_the_replica_is_replaced() -> None:
    async def scenario() -> tuple[FakeReplica, Job, Job]:
        replica = FakeReplica()
        scheduler = Scheduler("acme/churn:1", Batching())
        doomed, after = await submit_all(scheduler, [{"crash": True}, {"n": 1}])
        scheduler.attach(replica)  # type: ignore[arg-type]
        with pytest.raises(WorkerCrashed):
            await doomed.result
        await after.result
        await scheduler.close()
        return replica, doomed, after

    replica, _, after = run(scenario())
    assert replica.starts == 1
    assert after.result.result().output == {"n": 1}


class BrokenPipeReplica(FakeReplica):
    """Raises a foreign error once, as a pipe to a dying process does."""

    async def predict(self, inputs: list[dict[str, Any]]) -> list[Outcome]:
        if not self.batches:
            self.batches.append(inputs)
            raise BrokenPipeError("pipe closed")
        return await super().predict(inputs)


class UnrestartableReplica(FakeReplica):
    async def start(self) -> None:
        self.starts += 1
        raise OSError("cannot spawn")


def test_a_foreign_error_fails_its_batch_and_dispatch_goes_on() -> None:
    async def scenario() -> tuple[BaseException | None, Any]:
        scheduler = Scheduler("acme/churn:1", Batching())
        first, second = await submit_all(scheduler, [{"n": 0}, {"n": 1}])
        scheduler.attach(BrokenPipeReplica())  # type: ignore[arg-type]
        with pytest.raises(WorkerCrashed, match="sending work to a replica of 'acme/churn:1'"):
            await first.result
        outcome = await second.result
        await scheduler.close()
        return first.result.exception(), outcome.output

    error, output = run(scenario())
    assert isinstance(error, WorkerCrashed)
    assert output == {"n": 1}


def test_losing_the_last_replica_fails_queued_and_later_jobs_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("foretell.scheduler.dispatcher.RESTART_BACKOFF_S", 0.0)

    async def scenario() -> tuple[list[str], int, list[str]]:
        reasons: list[str] = []
        replica = UnrestartableReplica()
        scheduler = Scheduler("acme/churn:1", Batching(), on_unavailable=reasons.append)
        jobs = await submit_all(scheduler, [{"crash": True}, {"n": 1}, {"n": 2}])
        scheduler.attach(replica)  # type: ignore[arg-type]
        results = await asyncio.gather(*(j.result for j in jobs), return_exceptions=True)
        late = Job("late", {"n": 3})
        scheduler.submit(late)
        with pytest.raises(WorkerCrashed, match="could not be restarted"):
            await late.result
        await scheduler.close()
        return reasons, replica.starts, [type(r).__name__ for r in results]

    reasons, starts, results = run(scenario())
    assert starts == 3
    assert results == ["WorkerCrashed"] * 3
    assert reasons == [
        "every replica of model 'acme/churn:1' died and could not be restarted; see the server log"
    ]
