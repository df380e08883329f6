"""Every prediction ends exactly once: a state machine over real PredictionTasks, a real
Scheduler, Admission and Deployment (wired by hand, and perhaps still deploying when predictions
arrive), with fake replicas that take time, crash, obey (or ignore) interrupts and are restarted
(or not), and a fake store that records every write.

Whatever the order of submits, cancels, deadlines, crashes and failed restarts, each accepted
prediction reaches one terminal status (succeeded | failed | canceled | aborted), its terminal
record is written once and last, nothing is left queued or running, and the deployment's
admission count returns to 0.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from foretell.domain import (
    DeploymentStatus,
    ErrorSource,
    OutboxEvent,
    Prediction,
    PredictionStatus,
)
from foretell.errors import Overloaded, PredictionFinished, WorkerCrashed
from foretell.manifest import Batching
from foretell.manifest.schema import InputValidator
from foretell.scheduler import Admission, Scheduler
from foretell.service.deployment import Deployment
from foretell.service.recording import Recording
from foretell.service.reservation import Reservation
from foretell.service.sweeper import Sweeper
from foretell.service.task import PredictionTask, TaskContext
from foretell.store import PredictionStore
from foretell.webhooks import Outbox
from foretell.workers import Outcome, ReplicaHandle

MODEL = "acme/lifecycle:1"
SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "title": "N"}},
    "required": ["n"],
    "title": "Input",
}
INTERRUPTED = "Interrupted: the prediction was canceled"
# An unexpected exception inside the task is caught and reported with this prefix: a bug.
BUG = "foretell failed to run it"
# The fakes take milliseconds: a full queue drains in about 0.25 s, and something happens (a
# batch, a restart, a deadline) every few milliseconds until then. Both limits are for a stuck
# run and are paid only by one (a try while shrinking a hang): a busy machine can leave this
# process or the store's writer thread unscheduled for a second without anything being stuck.
DRAIN_TIMEOUT_S = 60.0
STALL_S = 2.0


@dataclass
class Faults:
    """What the machine has asked the fakes to do next."""

    crash_batches: int = 0  # the next this-many batches, on any replica, crash
    restarts_succeed: bool = True
    restart_delay_s: float = 0.002
    kill_grace_s: float = 0.003  # an interrupt-ignoring replica is killed this long after


class FakeReplica:
    """Answers {"n": n} with {"echo": n} after `delay_s`. A batch the scheduler interrupts
    ends at once with the child's "Interrupted" outcomes, or, if this replica ignores
    interrupts, is killed after a grace (WorkerCrashed), as a ProcessReplica's would be."""

    def __init__(self, faults: Faults, delay_s: float, obeys_interrupt: bool) -> None:
        self.faults = faults
        self.delay_s = delay_s
        self.obeys_interrupt = obeys_interrupt
        self.setup_time = 0.001
        self.running = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.batches = 0
        self.starts = 1
        self._interrupted: asyncio.Event | None = None

    @property
    def alive(self) -> bool:
        return True

    async def predict(self, inputs: list[dict[str, Any]]) -> list[Outcome]:
        assert self.running == 0, "the scheduler gave a busy replica a second batch"
        self.running += 1
        self.idle.clear()
        self.batches += 1
        interrupted = self._interrupted = asyncio.Event()
        crash = self.faults.crash_batches > 0
        if crash:
            self.faults.crash_batches -= 1
        try:
            try:
                async with asyncio.timeout(self.delay_s):
                    await interrupted.wait()
            except TimeoutError:
                pass  # ran its course
            else:
                if self.obeys_interrupt:
                    return [Outcome(error=INTERRUPTED) for _ in inputs]
                await asyncio.sleep(self.faults.kill_grace_s)
                raise WorkerCrashed(MODEL, -9)
            if crash:
                raise WorkerCrashed(MODEL, -9)
            return [Outcome(output={"echo": i["n"]}, execution_time=self.delay_s) for i in inputs]
        finally:
            self._interrupted = None
            self.running -= 1
            self.idle.set()

    def interrupt(self) -> bool:
        if self._interrupted is None:
            return False
        self._interrupted.set()
        return True


@dataclass(frozen=True)
class Write:
    kind: str  # "insert" | "update"
    status: PredictionStatus
    waited: bool  # through write() (a future to wait on), or *_soon


class FakeStore:
    """Records a snapshot of every write; a write() commits on the loop's next turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.writes: dict[str, list[Write]] = {}

    def _record(self, p: Prediction, kind: str, waited: bool) -> None:
        self.writes.setdefault(p.id, []).append(Write(kind, p.status, waited))

    def write(
        self, prediction: Prediction, *, new: bool, events: Sequence[OutboxEvent] = ()
    ) -> asyncio.Future[None]:
        assert not events, "these predictions have no webhook"
        self._record(prediction, "insert" if new else "update", True)
        done: asyncio.Future[None] = self.loop.create_future()
        self.loop.call_soon(done.set_result, None)
        return done

    def insert_soon(self, prediction: Prediction) -> None:
        self._record(prediction, "insert", False)

    def update_soon(self, prediction: Prediction) -> None:
        self._record(prediction, "update", False)


class NoWebhooks:
    """The outbox of predictions without a webhook: no events, ever."""

    def events(self, p: Prediction, *names: str) -> list[OutboxEvent]:
        assert p.webhook is None
        return []

    def on_commit(self, events: Sequence[OutboxEvent]) -> Any:
        raise AssertionError("no webhook, nothing to deliver")


@dataclass(eq=False)
class Tracked:
    task: PredictionTask
    valid: bool
    persisted_calls: list[PredictionTask]  # each call of its on_settled
    canceled_by_caller: bool = False

    @property
    def prediction(self) -> Prediction:
        return self.task.prediction


class PredictionLifecycle(RuleBasedStateMachine):
    predictions = Bundle("predictions")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.loop_errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda loop, context: self.loop_errors.append(context))
        self.faults = Faults()
        self.store = FakeStore(self.loop)
        self.tracked: list[Tracked] = []
        self.replicas: list[FakeReplica] = []
        self.restarts = 0
        self.restarting = 0  # restarts under way
        self.restarts_done = asyncio.Event()
        self.restarts_done.set()
        self.refusals = 0
        self.sweeper = Sweeper()
        self.deployment: Deployment | None = None
        self.scheduler: Scheduler | None = None
        self.attached = False  # settle() ran (the deployment may also settle failed by itself)

    # -- driving the loop ---------------------------------------------------------------

    def run(self, seconds: float = 0.0) -> None:
        """Let the loop run for `seconds` (0: one turn, so what is ready happens)."""
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def call(self, fn: Any, *args: Any) -> Any:
        """Call `fn` from inside the loop, as the service does."""

        async def inside() -> Any:
            return fn(*args)

        return self.loop.run_until_complete(inside())

    @property
    def d(self) -> Deployment:
        assert self.deployment is not None
        return self.deployment

    @property
    def s(self) -> Scheduler:
        assert self.scheduler is not None
        return self.scheduler

    def _unavailable(self, reason: str) -> None:
        """The scheduler lost its last replica: the deployment fails, as Deployment.start
        wires it (its status and error, and `settled` set)."""
        self.d.status, self.d.error = DeploymentStatus.FAILED, reason
        self.d.settled.set()

    async def _restart(self, replica: ReplicaHandle) -> bool:
        self.restarts += 1
        self.restarting += 1
        self.restarts_done.clear()
        try:
            await asyncio.sleep(self.faults.restart_delay_s)
            cast(FakeReplica, replica).starts += 1
            return self.faults.restarts_succeed
        finally:
            self.restarting -= 1
            if self.restarting == 0:
                self.restarts_done.set()

    # -- rules --------------------------------------------------------------------------

    @initialize(
        delays_ms=st.lists(st.integers(1, 6), min_size=1, max_size=3),
        obey=st.lists(st.booleans(), min_size=3, max_size=3),
        max_batch_size=st.integers(1, 3),
        max_delay_ms=st.sampled_from([0.0, 0.0, 2.0]),
        max_queue_size=st.integers(1, 10),
        ready_at_once=st.booleans(),
        restarts_succeed=st.booleans(),
    )
    def deploy(
        self,
        delays_ms: list[int],
        obey: list[bool],
        max_batch_size: int,
        max_delay_ms: float,
        max_queue_size: int,
        ready_at_once: bool,
        restarts_succeed: bool,
    ) -> None:
        self.faults.restarts_succeed = restarts_succeed
        batching = Batching(
            max_batch_size=max_batch_size, max_delay_ms=max_delay_ms, max_queue_size=max_queue_size
        )
        self.replicas = [
            FakeReplica(self.faults, ms / 1000, obeys)
            for ms, obeys in zip(delays_ms, obey, strict=False)
        ]

        # A real Deployment of no version on disk (so it starts nothing itself), wired by hand
        # as Deployment.start wires one: its admission, scheduler and validator.
        d = self.deployment = Deployment("acme", "lifecycle", 1, None)
        assert d.label == MODEL
        d.admission = Admission(MODEL, batching, len(self.replicas))

        async def scheduler() -> Scheduler:
            return Scheduler(
                MODEL,
                batching,
                restart=self._restart,
                on_unavailable=self._unavailable,
                on_batch=d.admission.observe,
            )

        d.scheduler = self.scheduler = self.loop.run_until_complete(scheduler())
        if ready_at_once:
            self.settle()

    @precondition(lambda self: self.deployment is not None and not self.attached)
    @rule()
    def settle(self) -> None:
        """The deployment finishes loading: its replicas join the scheduler."""
        self.attached = True
        for replica in self.replicas:
            self.call(self.s.attach, cast(ReplicaHandle, replica))
        # Only once a replica is ready does the validator exist (from its signature).
        self.d.validator = InputValidator(SCHEMA)
        self.d.status = DeploymentStatus.READY
        self.d.settled.set()
        self.run()

    @rule(
        target=predictions,
        requests=st.lists(
            st.tuples(
                st.integers(0, 99),
                st.integers(0, 9).map(lambda x: x > 0),  # valid, mostly
                st.none() | st.integers(0, 20),
                st.booleans(),
            ),
            min_size=1,
            max_size=3,
        ),
    )
    def submit(self, requests: list[tuple[int, bool, int | None, bool]]) -> Any:
        """Predictions arrive together (within one turn of the loop)."""
        # A refused one joins the bundle as None: what hypothesis draws must not depend on
        # timing, and how many were refused does.
        return multiple(*(self._create(*request) for request in requests))

    def _create(
        self, n: int, valid: bool, deadline_ms: int | None, synchronous: bool
    ) -> Tracked | None:
        """As PredictionService.create does: admit, (insert), track and start."""
        admission = self.d.admission
        before = admission.unfinished
        try:
            admission.admit()
        except Overloaded:
            assert before >= admission.limit, (before, admission.limit)
            self.refusals += 1
            return None
        assert before < admission.limit
        now = datetime.now(UTC)
        prediction = Prediction(
            id=str(uuid.uuid4()),
            owner="acme",
            name="lifecycle",
            version_number=1,
            status=PredictionStatus.PENDING,
            input={"n": n} if valid else {"n": f"not a number {n}"},
            created_at=now,
            updated_at=now,
            deadline_at=None if deadline_ms is None else now + timedelta(milliseconds=deadline_ms),
        )
        if not synchronous:
            self.store.write(prediction, new=True)  # the service's insert, before it starts
        calls: list[PredictionTask] = []

        def start() -> PredictionTask:
            store, outbox = cast(PredictionStore, self.store), cast(Outbox, NoWebhooks())
            task = PredictionTask(
                prediction,
                self.d,
                TaskContext(store, outbox, self.sweeper, calls.append),
                Reservation(admission),  # admitted above
                recording=Recording.ON_END if synchronous else Recording.EACH_STATUS,
            )
            task.start()
            return task

        tracked = Tracked(self.call(start), valid, calls)
        self.tracked.append(tracked)
        return tracked

    @rule(tracked=predictions)
    def cancel(self, tracked: Tracked | None) -> None:
        if tracked is None:
            return  # it was refused
        task = tracked.task

        async def cancel() -> tuple[PredictionStatus, PredictionFinished | None]:
            # Read the status on the same turn of the loop as the cancel: between two
            # run_until_complete calls, callbacks already due run first.
            before = task.prediction.status
            try:
                task.cancel()
            except PredictionFinished as refused:
                return before, refused
            return before, None

        before, refused = self.loop.run_until_complete(cancel())
        if before.terminal:
            assert refused is not None, f"canceling a {before} prediction must be refused"
            assert refused.status == before
            assert tracked.prediction.status is before, "a refused cancel changes nothing"
            return
        assert refused is None, f"a {before} prediction could not be canceled: {refused}"
        tracked.canceled_by_caller = True
        assert tracked.prediction.status is PredictionStatus.CANCELED
        assert task.ended

    @rule(batches=st.integers(1, 3))
    def crash_next(self, batches: int) -> None:
        """The next `batches` batches to start, on whichever replicas, crash their replica."""
        self.faults.crash_batches += batches

    @rule(succeed=st.booleans())
    def restarts_will(self, succeed: bool) -> None:
        self.faults.restarts_succeed = succeed

    @rule(ms=st.integers(0, 8))
    def wait(self, ms: int) -> None:
        self.run(ms / 1000)

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def admission_counts_exactly_the_unfinished(self) -> None:
        if self.deployment is None:
            return
        live = sum(1 for t in self.tracked if not t.prediction.status.terminal)
        assert self.d.admission.unfinished == live

    @invariant()
    def terminal_records_are_written_once_and_last(self) -> None:
        for t in self.tracked:
            writes = self.store.writes.get(t.prediction.id, [])
            terminal = [w for w in writes if w.status.terminal]
            if t.prediction.status.terminal:
                assert len(terminal) == 1, (t.prediction.status, writes)
                assert writes[-1] is terminal[0], writes
                assert terminal[0].status is t.prediction.status
                assert terminal[0].waited, "the terminal write is one the caller can wait on"
                assert t.task.ended
            else:
                assert terminal == [], writes
                assert not t.task.ended

    @invariant()
    def each_record_is_inserted_once_before_any_update(self) -> None:
        for t in self.tracked:
            writes = self.store.writes.get(t.prediction.id, [])
            inserts = [w for w in writes if w.kind == "insert"]
            if writes:
                assert writes[0].kind == "insert", writes
                assert len(inserts) == 1, writes

    @invariant()
    def nothing_waits_on_a_deployment_that_lost_every_replica(self) -> None:
        if self.deployment is not None and self.d.status is DeploymentStatus.FAILED:
            assert self.s.depth == 0
            assert not any(t.prediction.status is PredictionStatus.PROCESSING for t in self.tracked)

    @invariant()
    def a_replica_runs_one_batch_at_a_time(self) -> None:
        assert all(r.running in (0, 1) for r in self.replicas)

    # -- the end ------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            if self.deployment is not None:
                if not self.attached:
                    self.settle()
                self.loop.run_until_complete(self._drain())
                self._check_final()
        finally:
            self._close()

    async def _drain(self) -> None:
        """Let every prediction end, every write commit and every replica go idle; fail as
        soon as nothing has moved for STALL_S (a stuck prediction), so that shrinking a hang
        costs seconds per try, not the whole DRAIN_TIMEOUT_S."""
        settled = asyncio.ensure_future(self._settled())
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                while not settled.done():
                    before = self._progress()
                    await asyncio.wait((settled,), timeout=STALL_S)
                    if not settled.done() and self._progress() == before:
                        raise TimeoutError
        except TimeoutError:
            stuck = Counter(t.prediction.status.value for t in self.tracked)
            raise AssertionError(
                f"stuck: statuses {dict(stuck)}, queued {self.s.depth}, "
                f"replicas running {[r.running for r in self.replicas]}, "
                f"restarts under way {self.restarting}"
            ) from None
        finally:
            settled.cancel()
        settled.result()
        await asyncio.sleep(0)  # the persisted callbacks, called soon after their futures

    async def _settled(self) -> None:
        await asyncio.gather(*(t.task.finished() for t in self.tracked))
        await asyncio.gather(*(t.task.durable() for t in self.tracked))
        # A canceled prediction's batch may still run; a crash may still be restarting its
        # replica (a replica goes idle before the restart that follows begins).
        await asyncio.gather(*(r.idle.wait() for r in self.replicas))
        await self.restarts_done.wait()

    def _progress(self) -> tuple[object, ...]:
        """Changes whenever anything happens: a status, a batch, a restart, a write."""
        return (
            tuple(t.prediction.status for t in self.tracked),
            tuple((r.batches, r.running) for r in self.replicas),
            self.restarts,
            self.restarting,
            sum(len(w) for w in self.store.writes.values()),
        )

    def _check_final(self) -> None:
        d = self.d
        assert d.admission.unfinished == 0
        assert self.s.depth == 0
        for t in self.tracked:
            p = t.prediction
            assert p.status.terminal, p
            assert len(t.persisted_calls) == 1, (t.persisted_calls, p)
            assert t.persisted_calls[0] is t.task
            assert p.completed_at is not None
            if t.canceled_by_caller:
                assert p.status is PredictionStatus.CANCELED, p
            if p.status is PredictionStatus.SUCCEEDED:
                assert t.valid
                assert p.output == {"echo": p.input["n"]}, p
                assert p.error is None
                assert p.started_at is not None
                assert p.attempts == 1
            elif p.status is PredictionStatus.ABORTED:
                assert p.deadline_at is not None
                assert p.started_at is None, "aborted means its deadline passed before it ran"
                assert p.output is None
            elif p.status is PredictionStatus.CANCELED:
                assert p.output is None, "a canceled prediction's output is discarded"
                assert p.error is None
                if not t.canceled_by_caller:  # its deadline passed while it was running
                    assert p.deadline_at is not None
                    assert p.started_at is not None
            else:
                assert p.error is not None, p
                assert not p.error.message.startswith(BUG), p.error
                if p.error.source is ErrorSource.USER:
                    assert not t.valid
                    assert p.started_at is None
                else:
                    assert p.error.source is ErrorSource.INTERNAL, p.error
                    assert MODEL in p.error.message, p.error  # a crash, or the model is gone
                if not t.valid and d.status is DeploymentStatus.READY:
                    assert p.error.source is ErrorSource.USER, p.error
        assert self.loop_errors == [], [c.get("message") for c in self.loop_errors]

    def _close(self) -> None:
        loop = self.loop
        if loop.is_closed():
            return
        try:
            if self.deployment is not None:
                loop.run_until_complete(self.s.close())

            async def cancel_the_rest() -> None:
                rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in rest:
                    task.cancel()
                await asyncio.gather(*rest, return_exceptions=True)

            loop.run_until_complete(cancel_the_rest())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def test_every_prediction_ends_exactly_once() -> None:
    run_state_machine_as_test(
        PredictionLifecycle,
        settings=settings(
            max_examples=50,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
