"""One prediction's lifecycle: wait for its model, validate, run, record the outcome once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from foretell.domain import (
    DeploymentStatus,
    ErrorSource,
    Prediction,
    PredictionError,
    PredictionStatus,
    QueueStatus,
    WebhookEventName,
)
from foretell.errors import (
    InvalidInput,
    ModelLoadFailed,
    PredictionFinished,
    RecordNotSaved,
    StoreUnavailable,
    WorkerCrashed,
)
from foretell.scheduler import Job
from foretell.service.deployments import Deployment
from foretell.store import ClaimLost, PredictionStore
from foretell.webhooks import Outbox
from foretell.workers import Outcome

log = logging.getLogger(__name__)

# Pauses between tries of a terminal record's write: a database restarting or busy for a few
# seconds does not cost a finished prediction its outcome.
SAVE_RETRY_DELAYS_S = (0.1, 0.5, 2.0)
# After those, a record already in the store (its creation was acknowledged) is written again
# this often for as long as the store is unavailable: its outcome lands once the store is back.
UNAVAILABLE_RETRY_S = 1.0


class PredictionTask:
    """Owns a live prediction's record; the only writer of its status until it is terminal."""

    def __init__(
        self,
        prediction: Prediction,
        deployment: Deployment,
        store: PredictionStore,
        outbox: Outbox,
        on_persisted: Callable[[asyncio.Future[None]], None],
        validated_input: dict[str, Any] | None = None,
        *,
        stored: bool = True,
        recorded: bool = True,
    ) -> None:
        self.prediction = prediction
        # False until the record's first write is queued: a synchronous prediction is written
        # once, when it ends (or when its caller stops waiting), not once per status.
        self.stored = stored
        # False: nothing of it is ever written (a dialect whose callers only want the answer).
        self.recorded = recorded
        self._validated_input = validated_input
        self._deployment = deployment
        self._store = store
        self._outbox = outbox
        self._on_persisted = on_persisted
        self._job: Job | None = None
        self._task: asyncio.Task[None] | None = None
        self._abandoned = False
        # True once another process took the record over (this one's lease had lapsed): its
        # outcome here was dropped, and the stored record is the one to show.
        self.lost = False
        self._deadline: asyncio.TimerHandle | None = None
        self.done = asyncio.Event()
        self.persisted: asyncio.Future[None] | None = None
        # Resolved once the terminal record is committed (or its write failed, or is stalled on
        # an unavailable store): what a caller waiting for the result waits on.
        self._durable: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Why the terminal record's write is stalled (its tries spent, the store unavailable),
        # while it keeps being tried: what its callers are told meanwhile (`durable`).
        self._stalled: StoreUnavailable | None = None
        # Resolved once a stop has put it back to pending and that is durable (`handed_back`).
        self._left: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        deployment = self._deployment
        if deployment.status is DeploymentStatus.READY and deployment.validator is not None:
            # Queue it now rather than when its task first runs: a loop turn sooner, and its
            # place in the queue shows in the record its creator gets back.
            with contextlib.suppress(InvalidInput):  # its task fails it, with the details
                self._submit(
                    self._validated_input or deployment.validator.validate(self.prediction.input)
                )
        self._task = asyncio.create_task(self._run(), name=f"prediction {self.prediction.id}")
        deadline_at = self.prediction.deadline_at
        if deadline_at is not None:
            # After a restart a passed deadline expires at once: the timer fires on the next turn.
            delay = (deadline_at - datetime.now(UTC)).total_seconds()
            self._deadline = asyncio.get_running_loop().call_later(max(delay, 0), self._expire)

    def _expire(self) -> None:
        """Its deadline passed: aborted if it never started, canceled if it is running."""
        p = self.prediction
        if p.status.terminal or self._abandoned:
            return
        if p.status is PredictionStatus.PENDING:
            p.logs += "[foretell] aborted: its deadline passed before it started\n"
            self.cancel(PredictionStatus.ABORTED)
        else:
            p.logs += "[foretell] canceled: its deadline passed while it was running\n"
            self.cancel()

    async def wait(self, wait_s: float) -> None:
        """Wait up to `wait_s` seconds for a terminal status that is also durable, or for a
        server stop to hand it back (`abandoned`)."""
        # asyncio.wait never cancels what it waits on: other callers may be waiting too.
        await asyncio.wait(
            (self._durable, self._left), timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
        )

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    async def left(self) -> None:
        """Once an abandoned prediction's record is back to pending, durably (`handed_back`)."""
        await asyncio.shield(self._left)

    def handed_back(self) -> None:
        """Its record is back to pending and durable (or could not be made so): its waiters
        are answered that the server stopped."""
        if not self._left.done():
            self._left.set_result(None)

    def cancel(self, outcome: PredictionStatus = PredictionStatus.CANCELED) -> None:
        """A queued prediction leaves the queue and never runs; a running one is interrupted
        where its replica allows, and any output it still produces is dropped."""
        status = self.prediction.status
        if status.terminal:
            raise PredictionFinished(self.prediction.id, status)
        self._withdraw()
        if status is PredictionStatus.PENDING and self._task is not None:
            self._task.cancel()
        self.finish(outcome)

    def queue_status(self) -> QueueStatus | None:
        """Where this prediction waits in its model's queue; None unless it is queued."""
        deployment = self._deployment
        if self._job is None or deployment.scheduler is None:
            return None
        place = deployment.scheduler.place(self._job)
        if place is None:
            return None
        eta = deployment.admission.eta_s(place.position)
        return QueueStatus(place.position, place.depth, eta)

    def save_soon(self, *, release: bool = False) -> None:
        """Queue the record's current state for the next commit (its first write, if need be);
        with `release`, handed back for any process to take at once (a stop)."""
        if not self.recorded:
            return
        if not self.stored:
            self.stored = True
            self._store.insert_soon(self.prediction)
        elif not release:
            self._store.update_soon(self.prediction)
        if release:  # merged into the insert above while that is still queued
            self._store.update_soon(self.prediction, release=True)

    def save(self, *events: WebhookEventName) -> asyncio.Future[None]:
        """Write the record's current state now, with the webhook `events` it causes; the
        future resolves once it is committed."""
        if not self.recorded:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        new, self.stored = not self.stored, True
        if self.prediction.webhook is None:
            return self._store.write(self.prediction, new=new)
        outbox = self._outbox.events(self.prediction, *events)
        on_commit = self._outbox.on_commit(outbox)
        return self._store.write(self.prediction, new=new, events=outbox, on_commit=on_commit)

    async def _until_stored(
        self, write: asyncio.Future[None], new: bool, events: list[WebhookEventName]
    ) -> None:
        """Wait for the terminal record's `write`, writing it again after a failure (a locked or
        restarting database). After the last try its callers see the error instead of an
        outcome the store does not hold, and the record stays as last committed: RecordNotSaved,
        or StoreUnavailable if the store could not be reached. A record already stored (its
        creation was acknowledged) is then written again every UNAVAILABLE_RETRY_S for as long as
        the store is unavailable, so its outcome lands once the store is back."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await write
                return
            except ClaimLost:
                # Another process took it over (this one stalled past its lease) and runs it:
                # its outcome is the one kept, this one is dropped, nothing overwritten.
                log.warning(
                    "prediction %s was taken over by another process; its %s here was dropped",
                    self.prediction.id,
                    self.prediction.status,
                )
                self.lost = True
                return
            except Exception as error:
                delay_s = self._retry_delay(attempt, new, error)
                if attempt <= len(SAVE_RETRY_DELAYS_S):
                    log.warning(
                        "storing prediction %s failed (try %d): %r; trying again in %g s",
                        self.prediction.id,
                        attempt,
                        error,
                        delay_s,
                    )
            await asyncio.sleep(delay_s)
            # Written as the first try was (an insert if that was one): a failed transaction
            # left nothing behind, its webhook events included.
            self.stored = not new
            write = self.save(*events)

    def _retry_delay(self, attempt: int, new: bool, error: Exception) -> float:
        """How long to wait before the next try of the terminal record's write; raises when
        there is none."""
        if attempt <= len(SAVE_RETRY_DELAYS_S):
            return SAVE_RETRY_DELAYS_S[attempt - 1]
        p = self.prediction
        if not isinstance(error, StoreUnavailable):
            raise RecordNotSaved(p.id, p.status, attempt, repr(error)) from error
        if new:  # never stored, never acknowledged: its caller is told to try again
            raise StoreUnavailable(error.store, error.cause, error.retry_after_s) from error
        if self._stalled is None:
            log.warning(
                "storing prediction %s failed %d times: %s; trying again every %g s",
                p.id,
                attempt,
                error,
                UNAVAILABLE_RETRY_S,
            )
        self._stalled = error
        if not self._durable.done():  # its waiters are answered now, not after the outage
            self._durable.set_result(None)
        return UNAVAILABLE_RETRY_S

    async def durable(self) -> None:
        """Wait until the terminal record is committed; raises why it was not (RecordNotSaved,
        StoreUnavailable). While the store is unavailable and the record's write is stalled,
        StoreUnavailable at once: its caller comes back later rather than waiting out the
        outage, and meets the outcome once it has landed."""
        assert self.persisted is not None, "durable() before the prediction ended"
        await asyncio.shield(self._durable)
        if self.persisted.done():
            return self.persisted.result()
        assert self._stalled is not None
        stalled = self._stalled
        raise StoreUnavailable(stalled.store, stalled.cause, stalled.retry_after_s)

    def _withdraw(self) -> None:
        scheduler = self._deployment.scheduler
        if self._job is not None and scheduler is not None:
            scheduler.cancel(self._job)

    def abandon(self) -> None:
        """Stop tracking without recording an outcome: the server is shutting down."""
        self._abandoned = True
        if self._deadline is not None:
            self._deadline.cancel()
        self._withdraw()
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        try:
            outcome = await self._execute()
        except Exception as exc:
            self._conclude(exc)
        else:
            self._conclude(outcome)

    def _on_result(self, result: asyncio.Future[Outcome]) -> None:
        if not result.cancelled():
            self._conclude(result.exception() or result.result())

    def _conclude(self, result: Outcome | BaseException) -> None:
        if self._abandoned:
            return  # shutting down: the record was put back to pending
        if isinstance(result, InvalidInput):
            self.fail(ErrorSource.USER, result.message, result.errors)
        elif isinstance(result, ModelLoadFailed | WorkerCrashed):
            self.fail(ErrorSource.INTERNAL, result.message)
        elif isinstance(result, BaseException):  # a bug must fail one prediction, never strand it
            log.error("prediction %s failed inside foretell", self.prediction.id, exc_info=result)
            message = f"foretell failed to run it: {type(result).__name__}: {result}"
            self.fail(ErrorSource.INTERNAL, message)
        elif result.refused is not None:
            error = PredictionError(ErrorSource.USER, result.error or "", result.refused)
            self.finish(PredictionStatus.FAILED, outcome=result, error=error)
        elif result.error is not None:
            self.finish(PredictionStatus.FAILED, outcome=result, error=_model_error(result))
        else:
            self.finish(PredictionStatus.SUCCEEDED, outcome=result)

    async def _execute(self) -> Outcome:
        if self._job is not None:
            return await self._job.result
        deployment, p = self._deployment, self.prediction
        if not deployment.settled.is_set():
            await deployment.settled.wait()
        if deployment.status is DeploymentStatus.FAILED:
            raise deployment.load_error()
        assert deployment.validator is not None
        assert deployment.scheduler is not None
        model_input = self._validated_input
        if model_input is None:
            model_input = deployment.validator.validate(p.input)
        return await self._submit(model_input)

    def _submit(self, model_input: dict[str, Any]) -> asyncio.Future[Outcome]:
        scheduler = self._deployment.scheduler
        assert scheduler is not None
        self._job = Job(self.prediction.id, model_input, on_start=self._started)
        scheduler.submit(self._job)
        return self._job.result

    def _made_durable(self, persisted: asyncio.Future[None]) -> None:
        if not self._durable.done():
            self._durable.set_result(None)

    def _started(self, setup_s: float) -> None:
        p = self.prediction
        if p.status.terminal or self._abandoned:
            return
        p.status, p.queue = PredictionStatus.PROCESSING, None
        p.started_at = p.updated_at = datetime.now(UTC)
        p.setup_time = timedelta(seconds=setup_s)
        self._deployment.metrics.queue_seconds.observe(
            (p.started_at - p.created_at).total_seconds()
        )
        p.attempts += 1
        if p.webhook is not None:
            self.save("start")  # its webhook event is written in the same transaction
        elif self.stored:
            self._store.update_soon(p)

    def fail(self, source: ErrorSource, message: str, detail: Any = None) -> None:
        self.finish(PredictionStatus.FAILED, error=PredictionError(source, message, detail))

    def finish(
        self,
        status: PredictionStatus,
        *,
        outcome: Outcome | None = None,
        error: PredictionError | None = None,
    ) -> None:
        """Record the terminal state once; anything arriving after that (e.g. a canceled
        prediction's output) is discarded."""
        p = self.prediction
        if p.status.terminal:
            return
        finish_record(p, status, error)
        if self._deadline is not None:
            self._deadline.cancel()
        self._deployment.admission.release()
        self._deployment.metrics.finished(p.status.value, p.error.source.value if p.error else None)
        if outcome is not None:
            self._deployment.metrics.execution_seconds.observe(outcome.execution_time)
            p.output = outcome.output if error is None else None
            p.execution_time = timedelta(seconds=outcome.execution_time)
            p.logs += outcome.logs
        events = _events(p, outcome)
        new = not self.stored
        # The first try is queued now, so it shares the next commit with its neighbours.
        first = self.save(*events)
        self.persisted = asyncio.ensure_future(self._until_stored(first, new, events))
        self.persisted.add_done_callback(self._on_persisted)
        self.persisted.add_done_callback(self._made_durable)
        self.done.set()


def finish_record(
    p: Prediction, status: PredictionStatus, error: PredictionError | None = None
) -> None:
    """Stamp a terminal status on a record: the one place completion times are set."""
    p.status, p.error, p.queue = status, error, None
    p.completed_at = p.updated_at = datetime.now(UTC)
    if p.setup_time is None and status not in (PredictionStatus.CANCELED, PredictionStatus.ABORTED):
        p.setup_time = timedelta(0)


def _events(p: Prediction, outcome: Outcome | None) -> list[WebhookEventName]:
    """What a prediction's end tells its webhook: the logs and output it made, then the end."""
    events: list[WebhookEventName] = []
    if outcome is not None and outcome.logs:
        events.append("logs")
    if p.status is PredictionStatus.SUCCEEDED:
        events.append("output")
    events.append("completed")
    return events


def _model_error(outcome: Outcome) -> PredictionError:
    return PredictionError(ErrorSource.MODEL, outcome.error or "the model failed")
