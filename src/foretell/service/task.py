"""One prediction's lifecycle: wait for its model, validate, run, record the outcome once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from foretell import metrics
from foretell.domain import (
    DeploymentStatus,
    ErrorSource,
    Prediction,
    PredictionError,
    PredictionStatus,
)
from foretell.errors import InvalidInput, ModelLoadFailed, PredictionFinished, WorkerCrashed
from foretell.scheduler import Job
from foretell.service.deployments import Deployment
from foretell.store import PredictionStore
from foretell.workers import Outcome

log = logging.getLogger(__name__)


class PredictionTask:
    """Owns a live prediction's record; the only writer of its status until it is terminal."""

    def __init__(
        self,
        prediction: Prediction,
        deployment: Deployment,
        store: PredictionStore,
        on_persisted: Callable[[asyncio.Future[None]], None],
        validated_input: dict[str, Any] | None = None,
    ) -> None:
        self.prediction = prediction
        self._validated_input = validated_input
        self._deployment = deployment
        self._store = store
        self._on_persisted = on_persisted
        self._job: Job | None = None
        self._task: asyncio.Task[None] | None = None
        self._abandoned = False
        self._deadline: asyncio.TimerHandle | None = None
        self.done = asyncio.Event()
        self.persisted: asyncio.Future[None] | None = None

    def start(self) -> None:
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
        """Wait up to `wait_s` seconds for a terminal status that is also durable."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await self.done.wait()
                assert self.persisted is not None
                await asyncio.shield(self.persisted)

    def cancel(self, outcome: PredictionStatus = PredictionStatus.CANCELED) -> None:
        """A queued prediction never runs; a running one keeps running but its output is dropped."""
        status = self.prediction.status
        if status.terminal:
            raise PredictionFinished(self.prediction.id, status)
        if self._job is not None:
            self._job.canceled = True
        if status is PredictionStatus.PENDING and self._task is not None:
            self._task.cancel()
        self.finish(outcome)

    def abandon(self) -> None:
        """Stop tracking without recording an outcome: the server is shutting down."""
        self._abandoned = True
        if self._deadline is not None:
            self._deadline.cancel()
        if self._job is not None:
            self._job.canceled = True
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        try:
            outcome = await self._execute()
        except InvalidInput as exc:
            self.fail(ErrorSource.USER, exc.message, exc.errors)
        except (ModelLoadFailed, WorkerCrashed) as exc:
            self.fail(ErrorSource.INTERNAL, exc.message)
        except Exception as exc:  # a bug must fail one prediction, never strand it
            log.exception("prediction %s failed inside foretell", self.prediction.id)
            self.fail(
                ErrorSource.INTERNAL, f"foretell failed to run it: {type(exc).__name__}: {exc}"
            )
        else:
            if outcome.error is not None:
                self.finish(PredictionStatus.FAILED, outcome=outcome, error=_model_error(outcome))
            else:
                self.finish(PredictionStatus.SUCCEEDED, outcome=outcome)

    async def _execute(self) -> Outcome:
        deployment, p = self._deployment, self.prediction
        if not deployment.settled.is_set():
            await deployment.settled.wait()
            p.setup_time = datetime.now(UTC) - p.created_at
        if deployment.status is DeploymentStatus.FAILED:
            raise deployment.load_error()
        assert deployment.validator is not None
        assert deployment.scheduler is not None
        model_input = self._validated_input
        if model_input is None:
            model_input = deployment.validator.validate(p.input)
        self._job = Job(p.id, model_input, on_start=self._started)
        deployment.scheduler.submit(self._job)
        return await self._job.result

    def _started(self) -> None:
        p = self.prediction
        if p.status.terminal or self._abandoned:
            return
        p.status = PredictionStatus.PROCESSING
        p.started_at = p.updated_at = datetime.now(UTC)
        metrics.QUEUE_SECONDS.labels(self._deployment.label).observe(
            (p.started_at - p.created_at).total_seconds()
        )
        p.attempts += 1
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
        _count(self._deployment.label, p)
        if outcome is not None:
            self._deployment.admission.observe(outcome.execution_time)
            metrics.EXECUTION_SECONDS.labels(self._deployment.label).observe(outcome.execution_time)
            p.output = outcome.output if error is None else None
            p.execution_time = timedelta(seconds=outcome.execution_time)
            p.logs += outcome.logs
        self.persisted = asyncio.ensure_future(self._store.update(p))
        self.persisted.add_done_callback(self._on_persisted)
        self.done.set()


def finish_record(
    p: Prediction, status: PredictionStatus, error: PredictionError | None = None
) -> None:
    """Stamp a terminal status on a record: the one place completion times are set."""
    p.status, p.error = status, error
    p.completed_at = p.updated_at = datetime.now(UTC)
    if p.setup_time is None and status not in (PredictionStatus.CANCELED, PredictionStatus.ABORTED):
        p.setup_time = timedelta(0)


def _count(model: str, p: Prediction) -> None:
    metrics.PREDICTIONS.labels(model, p.status.value).inc()
    if p.error is not None:
        metrics.ERRORS.labels(model, p.error.source.value).inc()


def _model_error(outcome: Outcome) -> PredictionError:
    return PredictionError(ErrorSource.MODEL, outcome.error or "the model failed")
