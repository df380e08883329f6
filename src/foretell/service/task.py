"""One prediction's lifecycle: wait for its model, validate, run, record the outcome once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
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
from foretell.domain.access import ANONYMOUS_ADMIN, Principal, Scope
from foretell.errors import (
    InvalidInput,
    ModelLoadFailed,
    ModelNotReady,
    PredictionFinished,
    RecordNotSaved,
    StoreUnavailable,
    WorkerCrashed,
)
from foretell.files.inputs import InputFiles, Resolved
from foretell.manifest.file_fields import FileFields
from foretell.metrics import Statistics
from foretell.scheduler import Job
from foretell.service.deployment import Deployment
from foretell.service.held import HeldInputFiles
from foretell.service.outputs import FileKeeper, NotKept, keep_files
from foretell.service.progress import Notifier, Progress, add_logs, grow
from foretell.service.recording import Recording
from foretell.service.reservation import Reservation
from foretell.service.sweeper import Sweeper
from foretell.store import ClaimLost, PredictionStore
from foretell.webhooks import Outbox
from foretell.workers import Chunk, Outcome

log = logging.getLogger(__name__)

# Pauses between tries of a terminal record's write: a database restarting or busy for a few
# seconds does not cost a finished prediction its outcome.
SAVE_RETRY_DELAYS_S = (0.1, 0.5, 2.0)
# After those, a record already in the store (its creation was acknowledged) is written again
# this often for as long as the store is unavailable: its outcome lands once the store is back.
UNAVAILABLE_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What every task of one service shares."""

    store: PredictionStore
    outbox: Outbox
    sweeper: Sweeper  # expires deadlines and waits
    # Called once the terminal record is committed or could not be (not while it is stalled
    # on an unavailable store): the service forgets the task.
    on_settled: Callable[[PredictionTask], None]
    files: FileKeeper | None = None  # where a model's output files are kept
    inputs: InputFiles | None = None  # resolves file inputs (URLs, data: URIs, stored files)
    held: HeldInputFiles | None = None  # caps the input files' bytes unfinished tasks hold
    max_logs_chars: int = 1024 * 1024  # a record's logs are cut past this (said once in them)
    progress_interval_s: float = 0.5  # a running prediction's growth is saved at most this often
    # Whether its growth is saved for other API processes to read (a shared store): alone on its
    # store, a process answers GETs and streams of what it runs from memory, so the saves of a
    # running record serve only its webhook's events. Measured on 200 streams of 100 KB
    # (bench/streams.py), those saves were a sixth of the server's samples and most of its
    # memory's growth: each re-encodes the whole record.
    progress_to_store: bool = True
    clock: Callable[[], float] = time.monotonic  # the progress saves' clock (a test's own)


class PredictionTask:
    """Owns a live prediction's record; the only writer of its status until it is terminal.

    It is no asyncio task: a prediction queued at once (its model ready) is driven by its job's
    result future and its record's write future, each calling back here, and each caller
    waiting on it holds one future, answered by `_answer` or expired by the sweeper. An asyncio
    task runs only for a prediction whose model is still loading (`_run`) and for a terminal
    write that failed and is tried again (`_until_stored`). Nothing here refers back to itself
    once it has ended (its job is dropped), so a finished prediction is freed by reference
    counting, not left to the cyclic collector."""

    # Set on the instance only when needed: a prediction nobody streams, that streams and
    # prints nothing, stores none of them.
    _notifier: Notifier | None = None  # streams of it wait on it (made for the first one)
    _progress: Progress | None = None  # made by its first chunk: see `_chunk`
    _logs_cut = False  # its logs reached max_logs_chars, and say so

    def __init__(
        self,
        prediction: Prediction,
        deployment: Deployment,
        context: TaskContext,
        reservation: Reservation,
        validated_input: dict[str, Any] | None = None,
        *,
        recording: Recording = Recording.EACH_STATUS,
        caller: Principal | None = None,
        files_resolved: bool = False,
        held_bytes: int = 0,
    ) -> None:
        self.prediction = prediction
        self.recording = recording
        # False until the record's first write is queued: with ON_END, when it ends (or when
        # its caller stops waiting); with EACH_STATUS, its creator inserted it.
        self.stored = recording is Recording.EACH_STATUS
        self._validated_input = validated_input
        # Whose stored files its input may name (after a restart, its creator's); and whether
        # `validated_input` holds its files' bytes already (Validate-Input fetched them).
        self._caller = caller or _creator(prediction)
        self._files_resolved = files_resolved
        self._held_bytes = held_bytes  # of its input files' bytes, given back when it ends
        self._deployment = deployment
        self._context = context
        self._reservation = reservation
        self._job: Job | None = None
        self._task: asyncio.Task[None] | None = None  # only while its model loads
        self._retry: asyncio.Task[None] | None = None  # only while its terminal write is retried
        self._keeping: asyncio.Task[None] | None = None  # only while its output files are stored
        self._abandoned = False
        # True once another process took the record over (this one's lease had lapsed): its
        # outcome here was dropped, and the stored record is the one to show.
        self.lost = False
        self._deadline_tick: int | None = None
        # True once it has a terminal status (its record perhaps not yet committed).
        self.ended = False
        self._on_end: asyncio.Future[None] | None = None  # see `finished`
        self._events: list[WebhookEventName] = []  # what its terminal write carries
        self._was_stored = self.stored  # before its terminal write: an insert or an update
        # The terminal record's write is over: committed, lost to another process, or failed
        # for good (`_write_error`).
        self._persisted = False
        self._write_error: BaseException | None = None
        # Why the terminal record's write is stalled (its tries spent, the store unavailable),
        # while it keeps being tried: what its callers are told meanwhile (`durable`).
        self._stalled: StoreUnavailable | None = None
        self._handed_back = False  # see `handed_back`
        self._waiters: list[asyncio.Future[None]] | None = None  # one per waiting caller

    @property
    def recorded(self) -> bool:
        """Whether anything of it is ever written."""
        return self.recording is not Recording.UNRECORDED

    def start(self) -> None:
        deadline_at = self.prediction.deadline_at
        if deadline_at is not None:
            # After a restart a passed deadline expires at once: on the sweeper's next tick.
            delay = max((deadline_at - datetime.now(UTC)).total_seconds(), 0.0)
            self._deadline_tick = self._context.sweeper.add(self, PredictionTask._expire, delay)
        deployment = self._deployment
        validator = deployment.validator
        if deployment.status is not DeploymentStatus.READY or validator is None:
            self._task = asyncio.create_task(self._run(), name=f"prediction {self.prediction.id}")
            return
        # Queued now rather than on a later turn of the loop: its place in the queue shows in
        # the record its creator gets back.
        try:
            model_input = self._validated_input or validator.validate(self.prediction.input)
        except InvalidInput as invalid:
            self._conclude(invalid)
            return
        files = validator.files
        if files is not None and not self._files_resolved and files.find(model_input):
            # Its files are fetched as the first step of running: on a task of its own.
            self._validated_input = model_input
            self._task = asyncio.create_task(self._run(), name=f"prediction {self.prediction.id}")
            return
        self._submit(model_input).add_done_callback(self._on_result)

    def _expire(self) -> None:
        """Its deadline passed: aborted if it never started, canceled if it is running."""
        self._deadline_tick = None
        p = self.prediction
        if p.status.terminal or self._abandoned:
            return
        if p.status is PredictionStatus.PENDING:
            p.logs += "[foretell] aborted: its deadline passed before it started\n"
            self.cancel(PredictionStatus.ABORTED)
        else:
            p.logs += "[foretell] canceled: its deadline passed while it was running\n"
            self.cancel()

    def _forget_deadline(self) -> None:
        if self._deadline_tick is not None:
            self._context.sweeper.discard(self._deadline_tick, self)
            self._deadline_tick = None

    @property
    def _settled(self) -> bool:
        """Its waiters have their answer: the terminal write is over, or stalled."""
        return self._persisted or self._stalled is not None

    async def wait(self, wait_s: float) -> None:
        """Wait up to `wait_s` seconds for a terminal status that is also durable, or for a
        server stop to hand it back (`abandoned`)."""
        if not (self._settled or self._handed_back):
            await self._park(wait_s)

    async def _park(self, timeout_s: float | None) -> None:
        """Until the task next answers its waiters (see `_answer`), or `timeout_s` passes: one
        future for this caller, which no other caller shares, so that a caller who leaves
        (canceled) takes nothing from the others."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        sweeper = self._context.sweeper
        tick = None if timeout_s is None else sweeper.add(waiter, _time_up, timeout_s)
        try:
            await waiter
        finally:
            if tick is not None:
                sweeper.discard(tick, waiter)
            if self._waiters is not None and waiter in self._waiters:  # it timed out, or left
                self._waiters.remove(waiter)

    def _answer(self) -> None:
        if self._notifier is not None:  # inline: on every prediction's path
            self._notifier.wake()
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    async def changed(self) -> None:
        """Until its record next changes for a stream: output or logs grew, its status moved on,
        its terminal write settled, it was abandoned or handed back."""
        if self._notifier is None:
            self._notifier = Notifier()
        await self._notifier.changed()

    def _wake(self) -> None:
        if self._notifier is not None:
            self._notifier.wake()

    async def left(self) -> None:
        """Once an abandoned prediction's record is back to pending, durably (`handed_back`)."""
        while not self._handed_back:
            await self._park(None)

    def handed_back(self) -> None:
        """Its record is back to pending and durable (or could not be made so): its waiters
        are answered that the server stopped."""
        self._handed_back = True
        self._answer()

    async def finished(self) -> None:
        """Once it has a terminal status (its record perhaps not yet committed)."""
        if self.ended:
            return
        if self._on_end is None:
            self._on_end = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._on_end)  # rare (a stop): its awaiters may time out apart

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
        store = self._context.store
        if not self.stored:
            self.stored = True
            store.insert_soon(self.prediction)
        elif not release:
            store.update_soon(self.prediction)
        if release:  # merged into the insert above while that is still queued
            store.update_soon(self.prediction, release=True)

    def save(self, *events: WebhookEventName) -> asyncio.Future[None]:
        """Write the record's current state now, with the webhook `events` it causes; the
        future resolves once it is committed."""
        if not self.recorded:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        new, self.stored = not self.stored, True
        store = self._context.store
        if self.prediction.webhook is None:
            return store.write(self.prediction, new=new)
        outbox = self._context.outbox
        made = outbox.events(self.prediction, *events)
        return store.write(self.prediction, new=new, events=made, on_commit=outbox.on_commit(made))

    def _written(self, write: asyncio.Future[None]) -> None:
        """The terminal record's first write is over: settled, or tried again."""
        error = write.exception() if not write.cancelled() else asyncio.CancelledError()
        if error is None:
            self._settle()
        elif isinstance(error, ClaimLost):
            self._lose()
        elif not isinstance(error, Exception):  # canceled: as if its waiters were
            self._settle(error)
        else:
            # Rare (a locked or restarting database): a task of its own tries it again.
            self._retry = asyncio.create_task(
                self._until_stored(error), name=f"storing prediction {self.prediction.id}"
            )

    def _lose(self) -> None:
        # Another process took it over (this one stalled past its lease) and runs it: its
        # outcome is the one kept, this one is dropped, nothing overwritten.
        log.warning(
            "prediction %s was taken over by another process; its %s here was dropped",
            self.prediction.id,
            self.prediction.status,
        )
        self.lost = True
        self._settle()

    def _settle(self, error: BaseException | None = None) -> None:
        """The terminal write is over (`error`: failed for good): forgotten, waiters answered."""
        self._persisted, self._write_error, self._retry = True, error, None
        if error is not None:
            log.error("could not store prediction %s: %r", self.prediction.id, error)
        self._context.on_settled(self)
        self._answer()

    async def _until_stored(self, error: Exception) -> None:
        """Write the terminal record again after its first write failed with `error` (a locked
        or restarting database). After the last try its callers see the error instead of an
        outcome the store does not hold, and the record stays as last committed: RecordNotSaved,
        or StoreUnavailable if the store could not be reached. A record already stored (its
        creation was acknowledged) is then written again every UNAVAILABLE_RETRY_S for as long as
        the store is unavailable, so its outcome lands once the store is back."""
        new = not self._was_stored
        attempt = 1
        while True:
            try:
                delay_s = self._retry_delay(attempt, new, error)
            except (RecordNotSaved, StoreUnavailable) as final:
                self._settle(final)
                return
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
            attempt += 1
            try:
                await self.save(*self._events)
            except ClaimLost:
                self._lose()
                return
            except Exception as again:
                error = again
                continue
            self._settle()
            return

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
        stalling, self._stalled = self._stalled is None, error
        if stalling:
            log.warning(
                "storing prediction %s failed %d times: %s; trying again every %g s",
                p.id,
                attempt,
                error,
                UNAVAILABLE_RETRY_S,
            )
            self._answer()  # its waiters are answered now, not after the outage
        return UNAVAILABLE_RETRY_S

    async def durable(self) -> None:
        """Wait until the terminal record is committed; raises why it was not (RecordNotSaved,
        StoreUnavailable). While the store is unavailable and the record's write is stalled,
        StoreUnavailable at once: its caller comes back later rather than waiting out the
        outage, and meets the outcome once it has landed."""
        assert self.ended, "durable() before the prediction ended"
        while not self._settled:
            await self._park(None)
        if self._persisted:
            if self._write_error is not None:
                raise self._write_error
            return
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
        self._forget_deadline()
        self._forget_progress()
        self._wake()
        self._withdraw()
        self._job = None
        self._reservation.release()
        self._give_back_files()
        if self._task is not None:
            self._task.cancel()
        if self._keeping is not None:
            self._keeping.cancel()

    def _give_back_files(self) -> None:
        """Its input files' bytes are no longer held against the server's cap."""
        held, n = self._context.held, self._held_bytes
        if n and held is not None:
            self._held_bytes = 0
            held.release(n)

    async def _run(self) -> None:
        """A prediction whose model was not ready when it was created."""
        try:
            outcome = await self._execute()
        except Exception as exc:
            self._conclude(exc)
        else:
            self._conclude(outcome)

    def _on_result(self, result: asyncio.Future[Outcome]) -> None:
        if not result.cancelled():
            job = self._job
            ended_at = job.ended_at if job is not None else None
            self._conclude(result.exception() or result.result(), ended_at)

    def _conclude(self, result: Outcome | BaseException, at: datetime | None = None) -> None:
        """Finish with `result`, which came `at` (its batch's end; else now)."""
        if self._abandoned:
            return  # shutting down: the record was put back to pending
        failed = PredictionStatus.FAILED
        if isinstance(result, InvalidInput):
            error = PredictionError(ErrorSource.USER, result.message, result.errors)
            self.finish(failed, error=error, at=at)
        elif isinstance(result, ModelLoadFailed | WorkerCrashed | ModelNotReady):
            # ModelNotReady: unloaded or removed before it ran (see _execute), not a bug.
            self.finish(failed, error=PredictionError(ErrorSource.INTERNAL, result.message), at=at)
        elif isinstance(result, BaseException):  # a bug must fail one prediction, never strand it
            log.error("prediction %s failed inside foretell", self.prediction.id, exc_info=result)
            message = f"foretell failed to run it: {type(result).__name__}: {result}"
            self.finish(failed, error=PredictionError(ErrorSource.INTERNAL, message), at=at)
        elif result.refused is not None:
            error = PredictionError(ErrorSource.USER, result.error or "", result.refused)
            self.finish(failed, outcome=result, error=error, at=at)
        elif result.error is not None:
            self.finish(failed, outcome=result, error=_model_error(result), at=at)
        elif result.files:
            self._keeping = asyncio.create_task(
                self._keep_files(result), name=f"storing prediction {self.prediction.id}'s files"
            )
        else:
            self.finish(PredictionStatus.SUCCEEDED, outcome=result, at=at)

    async def _keep_files(self, outcome: Outcome) -> None:
        """Store the files in a successful output, then record it with their URLs in their
        place: the record, each dialect's answer and each webhook carry URLs, never bytes.
        It ends once they are stored (its end time says so); a cancel meanwhile wins."""
        p, files = self.prediction, self._context.files
        try:
            if files is None:
                raise RuntimeError("this server keeps no files for a model's output")
            output = await keep_files(files, outcome.output, p.created_by or "", p.id)
        except NotKept as refused:
            self.finish(PredictionStatus.FAILED, outcome=outcome, error=refused.error)
        except Exception as exc:
            self._conclude(exc)
        else:
            self.finish(PredictionStatus.SUCCEEDED, outcome=replace(outcome, output=output))
        finally:
            self._keeping = None

    async def _execute(self) -> Outcome:
        deployment, p = self._deployment, self.prediction
        if not deployment.settled.is_set():
            await deployment.settled.wait()
        if deployment.status is DeploymentStatus.FAILED:
            raise deployment.load_error()
        if deployment.validator is None or deployment.scheduler is None:
            # Stopped (unloaded or removed) before it had loaded, or before this was queued.
            raise ModelNotReady(str(deployment.ref), deployment.status.value)
        model_input = self._validated_input
        if model_input is None:
            model_input = deployment.validator.validate(p.input)
        files = deployment.validator.files
        if files is not None and not self._files_resolved:
            model_input = await self._files_in(files, model_input)
        return await self._submit(model_input)

    async def _files_in(self, files: FileFields, model_input: dict[str, Any]) -> dict[str, Any]:
        """The input with its files' bytes in place, what was fetched said in the logs; a file
        that cannot be had fails the prediction as the caller's error (InvalidInput)."""
        inputs = self._context.inputs
        if inputs is None:
            raise RuntimeError("this server resolves no file inputs")
        caller, held = self._caller, self._context.held
        if held is None:
            resolved = await inputs.resolve(files, model_input, caller)
        else:
            resolved = await held.resolve(
                lambda: inputs.resolve(files, model_input, caller), _resolved_size
            )
            self._held_bytes = resolved.size
        self._add_logs("".join(f"{line}\n" for line in resolved.logs))
        return resolved.input

    def _submit(self, model_input: dict[str, Any]) -> asyncio.Future[Outcome]:
        scheduler = self._deployment.scheduler
        assert scheduler is not None
        # A job of a model that may print or stream hands its chunks here as they come; one
        # of another runtime makes no bound method for them (deployment.CHUNKING_RUNTIMES).
        if self._deployment.chunks:
            self._job = Job(
                self.prediction.id, model_input, on_start=self._started, on_chunk=self._chunk
            )
        else:
            self._job = Job(self.prediction.id, model_input, on_start=self._started)
        scheduler.submit(self._job)
        return self._job.result

    def _started(self, setup_s: float) -> None:
        p = self.prediction
        if p.status.terminal or self._abandoned:
            return
        p.status, p.queue = PredictionStatus.PROCESSING, None
        job = self._job
        p.started_at = p.updated_at = (job and job.started_at) or datetime.now(UTC)
        p.setup_time = timedelta(seconds=setup_s)
        queued = (p.started_at - p.created_at).total_seconds()
        self._deployment.metrics.queue_seconds.observe(queued)
        self._deployment.metrics.statistics.queue.add(queued)
        p.attempts += 1
        if p.webhook is not None:
            self.save("start")  # its webhook event is written in the same transaction
        elif self.stored:
            self._context.store.update_soon(p)
        if self._notifier is not None:  # inline: on every prediction's path
            self._notifier.wake()

    def _chunk(self, chunk: Chunk) -> None:
        """Part of its outcome while it runs (the replica's Chunk): output items add to the
        record's output as its stream says, prints to its logs; its readers are woken and its
        record saved soon. Dropped once it ended (a canceled prediction's) or was abandoned."""
        p = self.prediction
        if p.status.terminal or self._abandoned:
            return
        progress = self._progress
        if progress is None:
            progress = self._progress = Progress(self._save_progress)
        if grow(p, chunk):
            progress.output = True
        if chunk.logs:
            self._add_logs(chunk.logs)
            progress.logs = True
        self._wake()
        if (
            self.recorded
            and self.stored
            and progress.tick is None
            and (self._context.progress_to_store or p.webhook is not None)
        ):
            due = progress.saved_at + self._context.progress_interval_s - self._context.clock()
            if due <= 0:
                self._save_progress()
            else:
                progress.tick = self._context.sweeper.add(progress, Progress.due, due)

    def _add_logs(self, text: str) -> None:
        """Add to the record's logs up to max_logs_chars, the rest dropped with one note."""
        if text and not self._logs_cut:
            self._logs_cut = add_logs(self.prediction, text, self._context.max_logs_chars)

    def _save_progress(self) -> None:
        """Save the running record as it grew (queued for the next commit), with the webhook's
        `output` and `logs` events of what grew in the same write: at most one save every
        progress_interval_s, the end's own write carrying what came after the last."""
        progress, p = self._progress, self.prediction
        if progress is None or p.status.terminal or self._abandoned:
            return
        context = self._context
        progress.saved(p, context.store, context.outbox, context.clock())

    def _forget_progress(self) -> None:
        """No more progress saves: it ended, or was abandoned."""
        progress = self._progress
        if progress is not None:
            if progress.tick is not None:
                self._context.sweeper.discard(progress.tick, progress)
                progress.tick = None
            progress.save = None

    def finish(
        self,
        status: PredictionStatus,
        *,
        outcome: Outcome | None = None,
        error: PredictionError | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record the terminal state once, as `at` (else now); anything arriving after that
        (e.g. a canceled prediction's output) is discarded."""
        p = self.prediction
        if p.status.terminal:
            return
        finish_record(p, status, error, at)
        self.ended = True
        self._job = None  # nothing to withdraw now; and the job's callbacks refer to this task
        self._forget_deadline()
        self._reservation.release()
        self._give_back_files()
        deployment = self._deployment
        deployment.metrics.finished(p.status.value, p.error.source.value if p.error else None)
        _count(deployment.metrics.statistics, p, outcome)
        if outcome is not None:
            deployment.metrics.execution_seconds.observe(outcome.execution_time)
            if error is None:
                p.output = outcome.output  # the whole of it, a streamed one's too
                if outcome.streamed is not None:
                    p.streamed = outcome.streamed
            elif p.streamed is None:  # a streamed one keeps what it streamed
                p.output = None
            p.execution_time = timedelta(seconds=outcome.execution_time)
            if outcome.logs:
                self._add_logs(outcome.logs)
        progress = self._progress
        if progress is not None:
            self._forget_progress()
        if self._on_end is not None and not self._on_end.done():
            self._on_end.set_result(None)
        if self._notifier is not None:  # inline: on every prediction's path
            self._notifier.wake()
        if not self.recorded:
            self._settle()
            return
        self._events = _events(p, outcome, progress)
        self._was_stored = self.stored
        # The first try is queued now, so it shares the next commit with its neighbours.
        self.save(*self._events).add_done_callback(self._written)


def _count(stats: Statistics, p: Prediction, outcome: Outcome | None) -> None:
    """Count a prediction that just ended in Triton's statistics (a canceled one is neither a
    success nor a failure there)."""
    if p.completed_at is None or p.status is PredictionStatus.CANCELED:
        return
    took = (p.completed_at - p.created_at).total_seconds()
    (stats.success if p.status is PredictionStatus.SUCCEEDED else stats.fail).add(took)
    if outcome is not None:
        stats.compute_infer.add(outcome.execution_time)
    stats.last_inference_ms = int(p.completed_at.timestamp() * 1000)


def _creator(p: Prediction) -> Principal:
    """Whom a prediction taken over from the store acts for: the owner that created it (none:
    made without auth, by the anonymous admin)."""
    if p.created_by is None:
        return ANONYMOUS_ADMIN
    return Principal(owner=p.created_by, scope=Scope.PREDICT)


def _resolved_size(resolved: Resolved) -> int:
    return resolved.size


def _time_up(waiter: asyncio.Future[None]) -> None:
    """A waiting caller's time ran out (the sweeper's expiry)."""
    if not waiter.done():
        waiter.set_result(None)


def finish_record(
    p: Prediction,
    status: PredictionStatus,
    error: PredictionError | None = None,
    at: datetime | None = None,
) -> None:
    """Stamp a terminal status on a record, as `at` (its batch's end; else now): the one place
    completion times are set."""
    p.status, p.error, p.queue = status, error, None
    p.completed_at = p.updated_at = at or datetime.now(UTC)
    if p.setup_time is None and status not in (PredictionStatus.CANCELED, PredictionStatus.ABORTED):
        p.setup_time = timedelta(0)


def _events(
    p: Prediction, outcome: Outcome | None, progress: Progress | None = None
) -> list[WebhookEventName]:
    """What a prediction's end tells its webhook: the logs and output it made (since its last
    progress save, for a streamed one), then the end."""
    events: list[WebhookEventName] = []
    if (outcome is not None and outcome.logs) or (progress is not None and progress.logs):
        events.append("logs")
    if p.status is PredictionStatus.SUCCEEDED or (progress is not None and progress.output):
        events.append("output")
    events.append("completed")
    return events


def _model_error(outcome: Outcome) -> PredictionError:
    return PredictionError(ErrorSource.MODEL, outcome.error or "the model failed")
