"""PredictionService: THE prediction path — resolve, validate, persist, schedule, wait, cancel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from foretell.builds import Builder
from foretell.config import Settings
from foretell.domain import (
    DeliveryAttempt,
    DeploymentStatus,
    ErrorSource,
    ModelRef,
    OutboxEvent,
    Prediction,
    PredictionError,
    PredictionStatus,
    WebhookEventName,
)
from foretell.domain.access import ANONYMOUS_ADMIN, Principal
from foretell.domain.files import StoredFile
from foretell.errors import (
    ModelNotReady,
    NotFound,
    PredictionFinished,
    PredictionNotFound,
    ServerStopping,
)
from foretell.files import FileService
from foretell.files.inputs import InputFiles, Resolved
from foretell.manifest import Repository
from foretell.manifest.file_fields import FileFields
from foretell.service.catalog import Catalog
from foretell.service.deployment import Deployment
from foretell.service.deployments import Deployments
from foretell.service.environments import Environments
from foretell.service.following import Following
from foretell.service.held import HeldInputFiles
from foretell.service.ids import new_id
from foretell.service.keeper import LeaseKeeper
from foretell.service.lifecycle import Lifecycle
from foretell.service.recording import Recording
from foretell.service.recovery import interrupted_error, requeue, unreadable_error
from foretell.service.remote import Elsewhere
from foretell.service.reservation import Reservation, Unfinished
from foretell.service.spans import Spans
from foretell.service.stream import StreamEvent, StreamPosition
from foretell.service.sweeper import Sweeper
from foretell.service.task import PredictionTask, TaskContext, finish_record
from foretell.store import Page, PredictionStore
from foretell.webhooks import Outbox, check_target
from foretell.workers import ServerPlacement

log = logging.getLogger(__name__)

# What a caller refused or answered during a stop is told to wait before trying again: about a
# restart's time, or a load balancer's to send it elsewhere.
STOPPING_RETRY_AFTER_S = 5
# Expired work is taken over this many records at a time, until none is left.
TAKE_BATCH = 500
# A cancel of a prediction another process runs waits for it up to its lease and this much more:
# long enough for a dead process's lease to expire, and the prediction to be canceled here.
CANCEL_MARGIN_S = 5.0


@dataclass(frozen=True, slots=True)
class NewPrediction:
    """A request to predict, already translated out of whichever wire dialect it came in."""

    model: ModelRef
    input: dict[str, Any]
    webhook: dict[str, Any] | None = None
    validate_input: bool = False
    wait_s: float | None = None
    cancel_after_s: float | None = None
    # Who asks: it sees only the models it may, and the prediction is its owner's.
    caller: Principal = ANONYMOUS_ADMIN
    # False: answer only, keep no record (with `wait_s`; nothing to poll, nothing to recover).
    record: bool = True
    request_id: str | None = None  # the creating request's X-Request-Id, kept on the record


class PredictionService:
    """Every dialect calls this; it raises domain errors and never knows about HTTP."""

    def __init__(
        self,
        deployments: Deployments,
        store: PredictionStore,
        outbox: Outbox,
        settings: Settings,
        files: FileService | None = None,
    ) -> None:
        self._deployments = deployments
        # Stored files: uploads, inputs that name them, models' outputs (foretell.files).
        self.files = files or FileService.for_settings(store.files, settings)
        # Retention's removal of a model's output files is said on its record (data_removed).
        self.files.on_removed = self._outputs_removed
        self._environments = Environments(deployments, store.environments)
        # What the API may know of the models: views, never a deployment.
        self.catalog = Catalog(deployments, self._environments)
        # Versions added, removed, started and stopped while the server runs.
        self.lifecycle = Lifecycle(deployments, self.catalog, deployments.root)
        self._store = store
        self._outbox = outbox
        self._settings = settings
        self._spans = Spans.for_settings(settings)  # None unless tracing is on
        self._live: dict[str, PredictionTask] = {}
        # Asynchronous predictions unfinished, by the owner who created them (the limit).
        self._unfinished = Unfinished(settings.max_unfinished_per_owner)
        # One timer for every prediction's deadline and every waiting caller's wait.
        self._sweeper = Sweeper()
        # File inputs (URLs, data: URIs, stored files) resolved to their bytes.
        self.inputs = InputFiles(self.files, settings)
        self._held = HeldInputFiles(settings.max_input_files_bytes_held)
        self._tasks = TaskContext(
            store,
            outbox,
            self._sweeper,
            self._forget,
            self.files,
            self.inputs,
            self._held,
            max_logs_chars=settings.max_prediction_logs_chars,
            progress_interval_s=settings.progress_interval_s,
            progress_to_store=settings.store_shared,
        )
        self._stopping: asyncio.Future[None] | None = None  # see `close`
        # Other API processes share the store: claims on what runs here (and the webhook events
        # it delivers) are renewed, expired ones taken over, and predictions running elsewhere
        # waited on and canceled there.
        self._keeper = LeaseKeeper(
            store.leases.lease,
            renew=(lambda: store.leases.renew(list(self._live)), outbox.renew),
            take=(self.recover, outbox.take),
        )
        self._elsewhere = Elsewhere(
            store, self._cancel_taken, confirm_s=settings.lease_s + CANCEL_MARGIN_S
        )
        self._following = Following(
            self._live.get,
            store.get,
            self._elsewhere.pause,
            settings.stream_poll_s,
            lambda: self._stopping is not None,
        )

    @classmethod
    def for_repository(
        cls,
        repository: Repository,
        store: PredictionStore,
        outbox: Outbox,
        settings: Settings,
        files: FileService | None = None,
    ) -> PredictionService:
        """A service over a deployment of each version in `repository`, none started yet."""
        placement = ServerPlacement.of(settings)
        builder = Builder(settings.environments, timeout_s=settings.build_timeout_s)
        deployments = Deployments(repository, placement, builder)
        return cls(deployments, store, outbox, settings, files)

    def deploy(self, concurrency: int) -> None:
        """Start every deployment in the background, `concurrency` at a time; with
        `watch_repository`, versions added to or removed from the repository follow."""
        self._deployments.start(concurrency)
        if self._settings.watch_repository:
            self.lifecycle.watch()

    async def deployed(self) -> None:
        """Wait until every deployment has settled (ready or failed)."""
        await self._deployments.started()

    async def undeploy(self) -> None:
        """Stop watching the repository, then every deployment's replicas."""
        await self.lifecycle.close()
        await self._deployments.stop()

    async def create(self, request: NewPrediction) -> Prediction:
        """Persist a prediction (durably, before returning) and schedule it; with `wait_s`,
        return once it is finished or the wait runs out, whichever comes first."""
        if self._stopping is not None:  # nothing new: it would never run, nor be answered
            raise ServerStopping(STOPPING_RETRY_AFTER_S)
        caller = request.caller
        deployment = self._deployments.resolve(request.model, caller)
        if request.webhook is not None:
            allow_private = self._settings.webhook_allow_private
            await check_target(request.webhook["url"], allow_private=allow_private)
        validated_input = None
        fetched: Resolved | None = None
        # A model taking files has every input checked first, so a server path it refuses is
        # answered 422 and never even recorded (a model still loading checks in its task).
        files = deployment.validator.files if deployment.validator is not None else None
        if request.validate_input or files is not None:
            validated_input = await self._validate(deployment, request)
        if files is not None and validated_input is not None:
            self.inputs.check(files, validated_input)
        prediction = _new_record(request, deployment)
        if deployment.status is DeploymentStatus.FAILED:
            # The model failed to load: say so at once rather than queueing doomed work.
            error = PredictionError(ErrorSource.INTERNAL, deployment.load_error().message)
            finish_record(prediction, PredictionStatus.FAILED, error)
            if request.record:
                await self._write(prediction, new=True, events=("completed",))
            return prediction
        recording = Recording.chosen(
            wait_s=request.wait_s, webhook=request.webhook, record=request.record
        )
        if deployment.status is DeploymentStatus.STOPPED:
            # Unloaded: it will not start by itself. Checked here, just before its admission
            # with nothing awaited between: a drain waits for what was admitted before.
            raise ModelNotReady(str(deployment.ref), deployment.status.value)
        # Before the insert: a refused prediction is never created. Only an asynchronous one
        # counts against its owner's limit: a waiting caller holds its own connection.
        owner = None if request.wait_s else prediction.created_by
        reservation = Reservation.take(deployment.admission, self._unfinished, owner)
        try:
            if files is not None and validated_input is not None and request.validate_input:
                # Fetched now, once admitted (a full queue is told so before any fetch): a
                # file that cannot be had is a 422, and nothing is recorded.
                fetched = await self._fetch_now(files, validated_input, caller)
                validated_input = fetched.input
                prediction.logs += "".join(f"{line}\n" for line in fetched.logs)
            if recording is Recording.EACH_STATUS:
                await self._store.insert(prediction)
        except BaseException:
            reservation.release()
            if fetched is not None:
                self._held.release(fetched.size)
            raise
        # From here the task holds the reservation, and releases it when the prediction ends.
        task = self._track(
            prediction,
            deployment,
            reservation,
            validated_input,
            recording,
            caller=caller,
            files_resolved=fetched is not None,
            held_bytes=fetched.size if fetched is not None else 0,
        )
        task.start()
        if self._spans is not None:  # tracing on (foretell.tracing)
            self._spans.follow(task)
        if request.wait_s:
            await _wait_for(task, request.wait_s)
        return _showing_queue(task)

    async def _fetch_now(
        self, files: FileFields, validated_input: dict[str, Any], caller: Principal
    ) -> Resolved:
        """The input with its files' bytes, held against the server's cap until it ends."""
        return await self._held.resolve(
            lambda: self.inputs.resolve(files, validated_input, caller), _held_size
        )

    async def _validate(self, deployment: Deployment, request: NewPrediction) -> dict[str, Any]:
        """The input as the model's schema reads it. The schema is known once a replica has
        loaded: until then the caller is told so at once (ModelNotReady, with its Retry-After),
        as every dialect tells it, rather than held while the model loads."""
        if deployment.validator is None:
            if deployment.not_ready:
                raise ModelNotReady(str(deployment.ref), deployment.status.value)
            raise deployment.load_error()
        return deployment.validator.validate(request.input)

    def _track(
        self,
        prediction: Prediction,
        deployment: Deployment,
        reservation: Reservation,
        validated_input: dict[str, Any] | None = None,
        recording: Recording = Recording.EACH_STATUS,
        *,
        caller: Principal | None = None,
        files_resolved: bool = False,
        held_bytes: int = 0,
    ) -> PredictionTask:
        task = PredictionTask(
            prediction,
            deployment,
            self._tasks,
            reservation,
            validated_input,
            recording=recording,
            caller=caller,
            files_resolved=files_resolved,
            held_bytes=held_bytes,
        )
        self._live[prediction.id] = task
        return task

    def _forget(self, task: PredictionTask) -> None:
        """Its terminal record is committed (or could not be): stays live until then, so a GET
        never reads an older stored state."""
        if self._live.get(task.prediction.id) is task:
            del self._live[task.prediction.id]

    async def get(
        self,
        prediction_id: str,
        viewer: Principal = ANONYMOUS_ADMIN,
        *,
        wait_s: float | None = None,
    ) -> Prediction:
        """The record, if `viewer` may see it (else PredictionNotFound, as if it did not exist).
        With `wait_s`, once it has ended or after that many seconds, whichever comes first, and
        whichever API process runs it."""
        task = self._live.get(prediction_id)
        if task is not None and not viewer.owns(task.prediction.created_by):
            raise PredictionNotFound(prediction_id)
        if task is not None and wait_s:
            await task.wait(wait_s)
        if task is not None and not task.lost:
            if task.ended:
                # Never show a finished state that a crash could still take back: wait for its
                # commit, and if that failed for good, the caller gets RecordNotSaved (while the
                # store is unavailable, StoreUnavailable).
                await task.durable()
            if not task.lost:  # else another process took it over: the store has its record
                live = _showing_queue(task)
                await self._outbox.show_status([live])
                return live

        async def read() -> Prediction | None:
            stored = await self._store.get(prediction_id)
            return stored if stored is not None and viewer.owns(stored.created_by) else None

        if task is None and wait_s:
            found = await self._elsewhere.wait(prediction_id, read, wait_s)
        else:
            found = await read()
        if found is None:
            raise PredictionNotFound(prediction_id)
        await self._outbox.show_status([found])
        return found

    async def stream(
        self,
        prediction_id: str,
        viewer: Principal = ANONYMOUS_ADMIN,
        since: StreamPosition | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Its events after `since` (None: from the start) as they happen, ended by `done` (or
        a cut: the server stopping): await this, then iterate. Raises before any event:
        PredictionNotFound (also another owner's), InvalidStreamPosition (`since` past the
        record). Live here: woken by its task, the end's events once its record is durable;
        run by another API process: its stored record, read every stream_poll_s."""
        return await self._following.stream(prediction_id, viewer, since)

    async def webhook_log(
        self, prediction_id: str, viewer: Principal = ANONYMOUS_ADMIN
    ) -> tuple[Prediction, list[tuple[OutboxEvent, list[DeliveryAttempt]]]]:
        """A prediction with its webhook events in order, each with its delivery attempts."""
        prediction = await self.get(prediction_id, viewer)
        return prediction, await self._outbox.log(prediction_id)

    async def redeliver(
        self, prediction_id: str, viewer: Principal = ANONYMOUS_ADMIN
    ) -> OutboxEvent:
        """Send the prediction's last webhook event again (raises NoWebhookEvent if none)."""
        return await self._outbox.redeliver(await self.get(prediction_id, viewer))

    async def list(
        self,
        *,
        model: ModelRef | None = None,
        status: PredictionStatus | None = None,
        cursor: str | None = None,
        limit: int = 100,
        viewer: Principal = ANONYMOUS_ADMIN,
        max_bytes: int | None = None,
    ) -> Page:
        """Newest first; a caller other than an admin sees only its owner's predictions. With
        `max_bytes`, a page holds only the records that fit in it rendered (always one)."""
        await self._store.flush()
        page = await self._store.list(
            owner=model.owner if model else None,
            name=model.name if model else None,
            status=status,
            created_by=None if viewer.admin else viewer.owner,
            cursor=cursor,
            limit=limit,
            max_bytes=max_bytes,
        )
        await self._outbox.show_status(page.items)
        return page

    async def cancel(self, prediction_id: str, viewer: Principal = ANONYMOUS_ADMIN) -> Prediction:
        """Raises PredictionFinished (with its status) if the prediction already ended. One that
        another API process runs is canceled there, or here if that process's lease expired
        (see Elsewhere.cancel)."""
        task = self._live.get(prediction_id)
        if task is None or not viewer.owns(task.prediction.created_by):
            stored = await self.get(prediction_id, viewer)
            if task is not None or stored.status.terminal:
                raise PredictionFinished(prediction_id, stored.status)
            canceled = await self._elsewhere.cancel(stored)
            await self._outbox.show_status([canceled])
            return canceled
        task.cancel()
        await task.durable()
        return task.prediction

    async def _outputs_removed(self, files: Sequence[StoredFile]) -> None:
        made = [f.prediction_id for f in files if f.prediction_id is not None]
        if made:
            await self._store.mark_data_removed(made)

    async def start(self) -> int:
        """Load the environments' assignments, hear the other API processes, and take over
        the unfinished work whose lease expired (see `recover`), from now on every few seconds
        too; returns how many predictions were resumed now."""
        await self._environments.load()
        self._elsewhere.listen(self._heard_cancel)
        await self._store.notices.start()
        log.info(
            "API process %s: claims on what it runs last %g s unrenewed",
            self._store.instance,
            self._settings.lease_s,
        )
        resumed = await self.recover()
        self._keeper.start()
        return resumed

    async def recover(self) -> int:
        """Take over the unfinished predictions whose lease expired (a process that stopped or
        died, this one's previous run included) and resume them: pending ones run; processing
        ones re-run (at most `max_reruns` times) or fail with an internal error. Returns how
        many. Work whose process still renews its lease is never taken."""
        taken = 0
        while self._stopping is None:
            batch = await self._store.leases.claim_expired(TAKE_BATCH)
            for prediction in batch:
                if prediction.id in self._live:
                    continue  # it runs here: its lease lapsed while the store was away
                task = self._resume(prediction)
                if task is not None:
                    task.start()
            taken += len(batch)
            if len(batch) < TAKE_BATCH:
                break
        if taken:
            log.info("took over %d unfinished predictions whose lease had expired", taken)
        return taken

    def _resume(self, prediction: Prediction) -> PredictionTask | None:
        if (unrunnable := unreadable_error(prediction)) is not None:
            self._fail_stored(prediction, unrunnable)
            return None
        ref = ModelRef(prediction.owner, prediction.name, prediction.version_number)
        try:
            deployment = self._deployments.resolve(ref)
        except NotFound:
            self._fail_stored(prediction, f"model version '{ref}' is no longer in the repository")
            return None
        if prediction.status is PredictionStatus.PROCESSING:
            error = interrupted_error(prediction, self._settings.max_reruns)
            if error is not None:
                self._fail_stored(prediction, error)
                return None
            requeue(prediction)
            self._store.update_soon(prediction)
        reservation = Reservation.retake(
            deployment.admission, self._unfinished, prediction.created_by
        )
        return self._track(prediction, deployment, reservation)

    def _heard_cancel(self, prediction_id: str | None) -> None:
        """An API process was asked to cancel `prediction_id`: if it runs here, cancel it."""
        task = self._live.get(prediction_id) if prediction_id is not None else None
        if task is not None and not (task.prediction.status.terminal or task.abandoned):
            task.cancel()

    async def _cancel_taken(self, prediction: Prediction) -> Prediction:
        """Cancel a prediction just taken over from a process whose lease expired: it never
        runs here."""
        prediction.logs += "[foretell] canceled after the API process running it had stopped\n"
        finish_record(prediction, PredictionStatus.CANCELED)
        await self._write(prediction, new=False, events=("completed",))
        return prediction

    def _fail_stored(self, prediction: Prediction, message: str) -> None:
        error = PredictionError(ErrorSource.INTERNAL, message)
        finish_record(prediction, PredictionStatus.FAILED, error)
        self._write(prediction, new=False, events=("completed",))

    def _write(
        self, prediction: Prediction, *, new: bool, events: tuple[WebhookEventName, ...]
    ) -> asyncio.Future[None]:
        """Store a record no task tracks, with the webhook events it causes."""
        outbox = self._outbox.events(prediction, *events)
        on_commit = self._outbox.on_commit(outbox)
        return self._store.write(prediction, new=new, events=outbox, on_commit=on_commit)

    async def close(self, grace_s: float) -> None:
        """Stop: take no new prediction, put queued ones back to pending at once, let running
        ones finish for up to `grace_s` and then put them back too, so that the next start runs
        them; every record durable. Whoever waits on one put back is answered ServerStopping
        as soon as it is durable. Called again (the app's shutdown after the server's stop, which
        starts this at the signal), it waits for the same stop."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(grace_s))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace_s: float) -> None:
        self._elsewhere.stop()  # callers waiting on other processes' work are answered now
        live = list(self._live.values())
        running = [t for t in live if t.prediction.status is PredictionStatus.PROCESSING]
        # Queued work never starts now: its callers hear at once, rather than after the grace.
        await self._put_back([t for t in live if t.prediction.status is PredictionStatus.PENDING])
        if running:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await asyncio.gather(*(t.finished() for t in running))
        await self._put_back(
            [t for t in self._live.values() if not (t.prediction.status.terminal or t.abandoned)]
        )
        await self._store.flush()
        if self._spans is not None:
            self._spans.close()
        await self._keeper.close()  # renewed until now: nothing of it was taken while it ran
        await self.inputs.close()

    async def _put_back(self, tasks: Sequence[PredictionTask]) -> None:
        """Stop `tasks` without an outcome, their records back to pending (the ones kept)."""
        for task in tasks:
            task.abandon()
            requeue(task.prediction, counted=False)
            task.save_soon(release=True)  # for another API process to take at once
        try:
            if tasks:
                await self._store.flush()
        finally:
            for task in tasks:
                task.handed_back()


async def _wait_for(task: PredictionTask, wait_s: float) -> None:
    """Wait for the end, then leave the record as the caller's answer needs it: durable, or
    (unrecorded and unfinished) stopped, as nobody could ask for it later."""
    await task.wait(wait_s)
    if task.abandoned:  # the server is stopping; the record is back to pending, if kept
        await task.left()
        raise ServerStopping(STOPPING_RETRY_AFTER_S, task.prediction.id, kept=task.recorded)
    if not task.recorded and not task.prediction.status.terminal:
        # Nobody can ask for it later: stop it rather than hold a replica for nothing.
        task.prediction.logs += "[foretell] canceled: its caller stopped waiting\n"
        task.cancel()
    elif not task.stored and task.recorded:
        await task.save()  # still running: the caller will poll the id it gets back
    elif task.ended:
        await task.durable()


def _new_record(request: NewPrediction, deployment: Deployment) -> Prediction:
    """A pending record of `request` on `deployment`, created now."""
    now = datetime.now(UTC)
    return Prediction(
        id=new_id(),
        owner=deployment.owner,
        name=deployment.name,
        version_number=deployment.number,
        deployment_id=deployment.id,
        status=PredictionStatus.PENDING,
        input=request.input,
        webhook=request.webhook,
        created_at=now,
        updated_at=now,
        deadline_at=_deadline(now, request.cancel_after_s, deployment),
        created_by=request.caller.owner or None,
        request_id=request.request_id,
    )


def _showing_queue(task: PredictionTask) -> Prediction:
    prediction = task.prediction
    prediction.queue = task.queue_status()
    return prediction


def _deadline(
    now: datetime, cancel_after_s: float | None, deployment: Deployment
) -> datetime | None:
    """The request's Cancel-After, else the model's default deadline, else none."""
    manifest = deployment.version.manifest if deployment.version else None
    seconds = cancel_after_s or (manifest.timeouts.deadline_s if manifest else None)
    return None if seconds is None else now + timedelta(seconds=seconds)


def _held_size(resolved: Resolved) -> int:
    return resolved.size
