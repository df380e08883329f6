"""Replicas follow the queue whatever happens: a state machine over a real Scheduler with
Scaling, fake replicas whose batches the test releases, starts that take time or fail, ranges
changed while running, and a clock the test moves.

Whatever the order, no start is made with `max` replicas running or starting, beyond `min` only
one start runs at a time, only an idle replica is stopped, every job ends (an outcome, or the
failed start's error as data), and once idle past `idle_s` the replicas come back to `min`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from foretell.errors import ModelLoadFailed
from foretell.manifest import Batching, ReplicaRange
from foretell.scheduler import Job, Scaling, Scheduler
from foretell.scheduler.dispatcher import MAX_START_BACKOFF_S
from foretell.workers import Outcome

MODEL = "acme/scaling:1"
ranges = st.builds(
    lambda low, extra, idle, target: ReplicaRange(
        min=low, max=max(1, low + extra), idle_s=idle, target_wait_s=target
    ),
    st.integers(0, 2),
    st.integers(0, 2),
    st.sampled_from([0.5, 2.0, 10.0]),
    st.sampled_from([0.1, 1.0, 5.0]),
)


class Replica:
    """Runs a batch until the test releases it."""

    def __init__(self) -> None:
        self.setup_time = 0.25
        self.alive = True
        self.busy = False
        self.release = asyncio.Event()
        self.stopped = False

    async def predict(self, inputs: list[dict[str, Any]]) -> list[Outcome]:
        self.busy = True
        try:
            await self.release.wait()
        finally:
            self.busy = False
        self.release = asyncio.Event()
        return [Outcome(output=i) for i in inputs]

    def interrupt(self) -> bool:
        return False


class Scaled(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.now = 1000.0
        self.range = ReplicaRange(min=0, max=2, idle_s=2.0, target_wait_s=1.0)
        self.fail_starts = False
        self.opening = asyncio.Event()
        self.opening.set()
        self.attached: list[Replica] = []
        self.in_flight = 0  # starts under way
        self.jobs: list[Job] = []
        self.violations: list[str] = []
        self.scheduler = self.loop.run_until_complete(self._make())

    async def _make(self) -> Scheduler:
        return Scheduler(
            MODEL,
            Batching(max_batch_size=2),
            clock=lambda: self.now,
            scaling=Scaling(self.range, self._start, self._stop),
        )

    async def _start(self) -> None:
        running = self.scheduler.replicas
        if running + self.in_flight >= self.range.max:
            self.violations.append(f"start with {running}+{self.in_flight} of max {self.range}")
        if self.in_flight and running + self.in_flight >= self.range.min:
            self.violations.append(f"a second start beyond min: {running}, {self.range}")
        self.in_flight += 1
        try:
            await self.opening.wait()
            if self.fail_starts:
                raise ModelLoadFailed(MODEL, "setup refused")
            replica = Replica()
            self.attached.append(replica)
            self.scheduler.attach(replica)  # type: ignore[arg-type]
        finally:
            self.in_flight -= 1

    async def _stop(self, replica: Any) -> None:
        if replica.busy:
            self.violations.append("stopped a busy replica")
        replica.stopped = True

    def turn(self) -> None:
        """Let everything ready run (no time passes but the test's clock)."""

        async def turns() -> None:
            for _ in range(30):
                await asyncio.sleep(0)

        self.loop.run_until_complete(turns())

    def poke(self) -> None:
        """The cue to look again after moving the clock (or the range)."""

        async def rescale() -> None:
            self.scheduler.rescale(self.range)

        self.loop.run_until_complete(rescale())
        self.turn()

    @rule(n=st.integers(1, 5))
    def submit(self, n: int) -> None:
        async def add() -> None:
            for _ in range(n):
                job = Job(str(len(self.jobs)), {"n": len(self.jobs)})
                self.jobs.append(job)
                self.scheduler.submit(job)

        self.loop.run_until_complete(add())
        self.turn()

    @rule(seconds=st.sampled_from([0.05, 0.5, 1.0, 3.0, 20.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self.poke()

    @rule()
    def batches_finish(self) -> None:
        for replica in self.attached:
            replica.release.set()
        self.turn()

    @rule(fail=st.booleans(), slow=st.booleans())
    def starts_will(self, fail: bool, slow: bool) -> None:
        self.fail_starts = fail
        if slow:
            self.opening.clear()
        else:
            self.opening.set()
        self.turn()

    @rule(replicas=ranges)
    def rescale(self, replicas: ReplicaRange) -> None:
        self.range = replicas
        self.poke()

    @invariant()
    def the_rule_was_kept(self) -> None:
        assert not self.violations, self.violations

    def teardown(self) -> None:
        try:
            self._finish()
        finally:
            self.loop.run_until_complete(self.scheduler.close())
            self.loop.close()

    def _finish(self) -> None:
        self.fail_starts = False
        self.opening.set()
        for _ in range(40):  # release, let the backoff and idle_s pass, look again
            self.batches_finish()
            self.now += MAX_START_BACKOFF_S + self.range.idle_s
            self.poke()
            if all(j.result.done() for j in self.jobs) and self._at_min():
                break
        assert all(j.result.done() for j in self.jobs), "a job never ended"
        for job in self.jobs:
            error = job.result.exception()
            assert error is None or isinstance(error, ModelLoadFailed), error
        assert self._at_min(), (self.scheduler.replicas, self.range)
        assert not self.violations, self.violations

    def _at_min(self) -> bool:
        return self.scheduler.replicas == self.range.min and not self.in_flight


def test_replicas_follow_the_queue_within_the_range() -> None:
    run_state_machine_as_test(
        Scaled,
        settings=settings(
            max_examples=60,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
