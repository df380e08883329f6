"""Dispatch a deployment's queued jobs to its replicas in batches; replace a replica that dies."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from foretell import metrics
from foretell.errors import ForetellError, WorkerCrashed
from foretell.manifest import Batching, ReplicaRange
from foretell.scheduler.autoscale import NEVER, Seen, decide
from foretell.scheduler.batcher import Batcher
from foretell.scheduler.job import Job
from foretell.workers import Chunk, Outcome, ReplicaHandle

log = logging.getLogger(__name__)

Restart = Callable[[ReplicaHandle], Awaitable[bool]]
# After a replica start that failed, the next waits this long, doubled after each further
# failure up to the most: a model that cannot load (or not twice: a GPU's memory) must not be
# spawned again and again to keep its min or follow its queue.
START_BACKOFF_S = 1.0
MAX_START_BACKOFF_S = 60.0


async def _no_restart(replica: ReplicaHandle) -> bool:
    return False


@dataclass(eq=False)
class _Slot:
    """A replica as the dispatcher sees it: what it runs now, and whether it just started."""

    replica: ReplicaHandle
    running: list[Job] = field(default_factory=list)
    fresh: bool = True  # its next batch is its first since the model loaded
    restarting: bool = False
    idle_since: float = 0.0  # clock time it last became free

    @property
    def free(self) -> bool:
        return not self.running and not self.restarting


@dataclass(frozen=True, slots=True)
class Scaling:
    """How a scheduler adds and removes replicas as `autoscale.decide` says, within `replicas`.
    `start` loads one replica and attaches it (raises ForetellError when it could not); `stop`
    stops one the scheduler has already detached. Without it, the replicas attached are all."""

    replicas: ReplicaRange
    start: Callable[[], Awaitable[None]]
    stop: Callable[[ReplicaHandle], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class QueuePlace:
    """Where a waiting job stands: `position` 0 leaves next; `depth` jobs wait in all."""

    position: int
    depth: int


class Scheduler:
    """Owns one deployment's queue and hands batches to its free replicas, one at a time each.

    One dispatch loop: whenever a replica is free and the batcher says a batch is due, the batch
    goes to the least-loaded replica. A replica that fails is restarted through `restart`; when
    the last one is gone for good, every queued and later job fails at once and `on_unavailable`
    says why, so nothing waits forever on a model that cannot run."""

    def __init__(
        self,
        model: str,
        batching: Batching,
        *,
        restart: Restart = _no_restart,
        on_unavailable: Callable[[str], None] = lambda reason: None,
        on_batch: Callable[[float], None] = lambda seconds: None,
        clock: Callable[[], float] = time.monotonic,
        scaling: Scaling | None = None,
    ) -> None:
        self.model = model
        self._batcher: Batcher[Job] = Batcher(batching.max_batch_size, batching.max_delay_ms / 1000)
        self._restart = restart
        self._on_unavailable = on_unavailable
        self._on_batch = on_batch
        self._clock = clock
        self._slots: list[_Slot] = []
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()
        self._closing = False
        self._failure: ForetellError | None = None
        self._scaling = scaling
        self._range = scaling.replicas if scaling is not None else None
        self._starting = 0  # replicas being started (see `starting`)
        self._start_failures = 0  # in a row
        self._starts_from = 0.0  # clock time before which no start is made (after failures)
        self._batch_sizes = metrics.BATCH_SIZE.labels(model)
        self._restarts = metrics.RESTARTS.labels(model)
        self._depth = metrics.QUEUE_DEPTH.labels(model)

    def submit(self, job: Job) -> None:
        """Queue a job; if every replica is gone, fail it at once instead of letting it hang."""
        if self._failure is not None:
            job.result.set_exception(self._failure)
            return
        self._batcher.add(job, self._clock())
        self._depth.set(len(self._batcher))
        self._ensure_loop()  # with none running, the loop starts one
        self._wake.set()

    def cancel(self, job: Job) -> None:
        """A waiting job leaves the queue. A running one is marked, and when every job of its
        batch is canceled the replica is asked to stop the batch (where its kind allows)."""
        job.canceled = True
        if self._batcher.remove(job):
            self._depth.set(len(self._batcher))
            return
        for slot in self._slots:
            if job in slot.running and all(j.canceled for j in slot.running):
                slot.replica.interrupt()

    def place(self, job: Job) -> QueuePlace | None:
        """Where `job` waits in the queue; None once it has left (running or done)."""
        position = self._batcher.position(job)
        return None if position is None else QueuePlace(position, len(self._batcher))

    @property
    def depth(self) -> int:
        return len(self._batcher)

    @property
    def replicas(self) -> int:
        """Replicas attached and not yet retired."""
        return len(self._slots)

    def attach(self, replica: ReplicaHandle) -> None:
        """Start feeding a ready replica."""
        self._slots.append(_Slot(replica, idle_since=self._clock()))
        replica.on_exit = self._wake.set  # a replica found dead while idle is replaced at once
        self._ensure_loop()
        self._wake.set()

    def rescale(self, replicas: ReplicaRange) -> None:
        """Run between these bounds from now on: replicas start or stop as the rule says."""
        if self._scaling is None:
            raise ValueError(f"the scheduler of {self.model} was made without scaling")
        self._range = replicas
        self._ensure_loop()
        self._wake.set()

    async def starting(self, start: Callable[[], Awaitable[None]]) -> None:
        """Await a replica's start (which attaches it), counted as starting meanwhile so that
        the rule starts no other in its place. A function making the start, not the start
        itself: canceled before it runs, this leaves no coroutine made and never awaited."""
        self._starting += 1
        try:
            await start()
        except Exception:
            self._start_failed()
            raise
        else:
            self._start_failures = 0
        finally:
            self._starting -= 1
            self._wake.set()

    def _start_failed(self) -> None:
        self._start_failures += 1
        backoff = START_BACKOFF_S * 2 ** min(self._start_failures - 1, 16)
        self._starts_from = self._clock() + min(backoff, MAX_START_BACKOFF_S)

    def _ensure_loop(self) -> None:
        if self._loop is None and not self._closing:
            self._loop = asyncio.create_task(self._dispatch(), name=f"dispatch {self.model}")

    async def close(self) -> None:
        self._closing = True
        tasks = [t for t in (self._loop, *self._batches) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _dispatch(self) -> None:
        while True:
            self._replace_dead()
            now = self._clock()
            recheck = self._autoscale(now)
            wait = self._batcher.wait_s(now)
            slot = self._least_loaded()
            if slot is None or wait > 0:
                self._wake.clear()
                soonest = min(recheck, NEVER if slot is None else wait)
                timeout = None if soonest == NEVER else soonest
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                continue
            self._start(slot, self._batcher.take(now))

    def _replace_dead(self) -> None:
        """Replace the free replicas that died (killed, out of memory) while idle: nothing ran
        on them, so nothing fails, and what is queued waits for them or the others."""
        for slot in self._slots:
            if slot.free and not slot.replica.alive:
                slot.restarting = True
                self._spawn(self._replace(slot), "replace")

    def _autoscale(self, now: float) -> float:
        """Start or stop a replica if the rule says so; seconds until it should be asked again."""
        if self._scaling is None or self._range is None or self._closing or self._failure:
            return NEVER
        fixed = self._range.min == self._range.max
        if fixed and len(self._slots) + self._starting == self._range.min:
            return NEVER  # `replicas: N` with N running: the rule has nothing to say (hot path)
        seen = Seen(
            idle_since=[s.idle_since if s.free else None for s in self._slots],
            starting=self._starting,
            queued=len(self._batcher),
            oldest_queued_at=self._batcher.oldest(),
        )
        decision = decide(self._range, seen, now)
        if decision.start and now < self._starts_from:
            return self._starts_from - now  # after failed starts: not yet
        if decision.start:
            self._starting += 1  # now, not when the task runs: the next pass must see it
            self._spawn(self._grow(self._scaling), "start")
        if decision.stop is not None:
            slot = self._slots.pop(decision.stop)
            slot.replica.on_exit = lambda: None  # its end is ours, not a crash to replace
            self._spawn(self._retire(self._scaling, slot.replica), "stop")
            return 0.0  # another may be due to stop too (the range was lowered)
        return decision.recheck_s

    async def _grow(self, scaling: Scaling) -> None:
        try:
            await scaling.start()
        except Exception as exc:
            self._start_failed()
            error = exc if isinstance(exc, ForetellError) else _dispatch_error(self.model, exc)
            if not self._slots and self._starting == 1:
                # None serves and no other start is coming: what waited for this one fails as
                # data, as it would on a crashed replica; a later prediction tries again (once
                # the backoff has passed).
                self._fail_waiting(error)
        else:
            self._start_failures = 0
        finally:
            self._starting -= 1
            self._wake.set()

    async def _retire(self, scaling: Scaling, replica: ReplicaHandle) -> None:
        try:
            await scaling.stop(replica)
        except Exception:
            log.exception("stopping an idle replica of %s failed", self.model)

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        task = asyncio.create_task(work, name=f"{what} {self.model}")
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    def _least_loaded(self) -> _Slot | None:
        # A replica runs one batch at a time, so the least loaded is any free one; the first
        # keeps one replica's caches warm when load is light.
        for slot in self._slots:
            if slot.free:
                return slot
        return None

    def _start(self, slot: _Slot, batch: list[Job]) -> None:
        self._depth.set(len(self._batcher))
        self._batch_sizes.observe(len(batch))
        setup_s = slot.replica.setup_time if slot.fresh else 0.0
        slot.fresh = False
        slot.running = batch
        now = datetime.now(UTC)
        for job in batch:
            job.started_at = now
            job.on_start(setup_s)
        self._spawn(self._run(slot, batch), "batch")

    async def _run(self, slot: _Slot, batch: list[Job]) -> None:
        started = self._clock()
        inputs = [job.input for job in batch]
        try:
            if _streamed(batch):
                outcomes = await slot.replica.predict(inputs, functools.partial(_route, batch))
            else:  # nobody awaits chunks: the replica sends none (the hot path)
                outcomes = await slot.replica.predict(inputs)
            _check_count(self.model, outcomes, batch)
        except Exception as exc:
            error = exc if isinstance(exc, ForetellError) else _dispatch_error(self.model, exc)
            ended = datetime.now(UTC)
            for job in batch:
                if not job.result.done():
                    job.ended_at = ended
                    job.result.set_exception(error)
            slot.running = []
            await self._replace(slot)
            return
        self._on_batch(self._clock() - started)
        slot.running = []
        slot.idle_since = self._clock()
        self._wake.set()
        ended = datetime.now(UTC)
        for job, outcome in zip(batch, outcomes, strict=True):
            if not job.result.done():
                job.ended_at = ended
                job.result.set_result(outcome)

    async def _replace(self, slot: _Slot) -> None:
        slot.restarting = True
        self._restarts.inc()
        if await self._restart(slot.replica):
            slot.restarting, slot.fresh = False, True
            slot.idle_since = self._clock()
            self._wake.set()
            return
        self._slots.remove(slot)
        if not self._slots and not self._closing:
            reason = (
                f"every replica of model '{self.model}' died and could not be restarted; "
                "see the deployment's logs"
            )
            self._fail_all(WorkerCrashed(self.model, None, reason))
            self._on_unavailable(reason)

    def _fail_all(self, exc: ForetellError) -> None:
        self._failure = exc
        self._fail_waiting(exc)

    def _fail_waiting(self, exc: ForetellError) -> None:
        ended = datetime.now(UTC)
        for job in self._batcher.take_all():
            if not job.result.done():
                job.ended_at = ended
                job.result.set_exception(exc)
        self._depth.set(0)


def _streamed(batch: list[Job]) -> bool:
    # A loop, not any(): no generator made for every batch on the hot path.
    for job in batch:  # noqa: SIM110
        if job.on_chunk is not None:
            return True
    return False


def _route(batch: list[Job], chunk: Chunk) -> None:
    """A chunk to its own job, by its place in the batch; a canceled job's are dropped."""
    if not 0 <= chunk.index < len(batch):
        return
    job = batch[chunk.index]
    if job.canceled or job.on_chunk is None:
        return
    try:
        job.on_chunk(chunk)
    except Exception:  # one reader's bug must not end the replica's reading
        log.exception("handling a chunk of prediction %s failed", job.prediction_id)


def _check_count(model: str, outcomes: list[Outcome], batch: list[Job]) -> None:
    if len(outcomes) != len(batch):
        reason = f"the replica of '{model}' answered {len(outcomes)} outcomes for {len(batch)}"
        raise WorkerCrashed(model, None, reason)


def _dispatch_error(model: str, exc: Exception) -> WorkerCrashed:
    log.exception("dispatch to a replica of %s failed", model, exc_info=exc)
    return WorkerCrashed(model, None, f"sending work to a replica of '{model}' failed: {exc!r}")
