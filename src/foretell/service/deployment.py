"""A deployment: one running copy of a model version — its build, replicas, scheduler, status
and schema."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from foretell.builds import Builder
from foretell.domain import DeploymentStatus, ModelRef
from foretell.domain.access import Principal
from foretell.errors import (
    ModelLoadFailed,
)
from foretell.manifest import Batching, ModelVersion, ReplicaRange, Signature
from foretell.manifest.schema import InputValidator
from foretell.metrics import ModelMetrics
from foretell.scheduler import Admission, Scaling, Scheduler
from foretell.workers import LOCAL, Pool, ReplicaHandle, ServerPlacement

log = logging.getLogger(__name__)

MAX_LOGS = 64 * 1024  # a deployment's logs keep their newest characters
# The runtimes whose replicas may send Chunks while a batch runs: what user code prints (python),
# the tokens a generator yields (python, transformers). Others' jobs get no `on_chunk`: their
# outcome comes whole, and nothing is made for a stream per prediction.
CHUNKING_RUNTIMES = frozenset({"python", "transformers"})


def deployment_id(owner: str, name: str, number: int) -> str:
    """Stable across restarts, so stored predictions keep pointing at their deployment."""
    return hashlib.sha1(f"{owner}/{name}:{number}".encode()).hexdigest()[:8]


@dataclass(eq=False)
class Deployment:
    """A version being served. `settled` is set once it is ready or has failed."""

    owner: str
    name: str
    number: int
    version: ModelVersion | None
    status: DeploymentStatus = DeploymentStatus.DEPLOYING
    error: str | None = None
    signature: Signature | None = None
    validator: InputValidator | None = None
    scheduler: Scheduler | None = None
    pool: Pool | None = None
    logs: str = ""  # what went wrong setting up replicas, with the model's tracebacks
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))  # found or pushed
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))  # its status last
    ready_at: datetime | None = None  # when it last became ready
    stopped_at: datetime | None = None  # when it was last stopped (unloaded or removed)
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    placement: ServerPlacement = LOCAL  # the server's Ray cluster and default placement
    # Builds the version's own environment when it has a requirements.txt (None: never).
    builder: Builder | None = None
    build_log: str = ""  # pip's output building that environment, its newest characters
    # Called whenever what a view of it shows changes (status, error, schema, logs): the
    # catalog's cue to build its views again.
    on_change: Callable[[], None] = field(default=lambda: None, repr=False)
    # Its replicas being stopped (see `stop`).
    _halting: asyncio.Future[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.id = deployment_id(self.owner, self.name, self.number)  # read on every request
        self.label = str(self.ref)  # metrics label
        self.metrics = ModelMetrics(self.label)
        manifest = self.version.manifest if self.version else None
        # Whether its predictions' jobs take Chunks (read once here, not on each prediction).
        self.chunks = manifest is not None and manifest.runtime in CHUNKING_RUNTIMES
        # The range it runs in now: the manifest's, until a load or scale sets another.
        self.replicas = manifest.replicas if manifest else ReplicaRange()
        self.admission = Admission(
            str(self.ref), manifest.batching if manifest else Batching(), self.replicas.max
        )
        if self.builder is not None and self.version and self.builder.needs_build(self.version):
            self.status = DeploymentStatus.BUILDING  # from the first view: its build comes first

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.owner, self.name, self.number)

    @property
    def running(self) -> int:
        """Replicas started and serving now."""
        return self.scheduler.replicas if self.scheduler is not None else 0

    @property
    def loading(self) -> bool:
        """Building its environment or starting its replicas: it will answer soon."""
        return self.status.loading

    @property
    def not_ready(self) -> bool:
        """Loading or stopped: every dialect answers its "not ready" form."""
        return self.status.not_ready

    @property
    def public(self) -> bool:
        return self.version is not None and self.version.manifest.visibility == "public"

    def visible_to(self, viewer: Principal) -> bool:
        """Whether `viewer` may see and run it: its owner's keys, admin keys, or anyone's if
        public. Others are told it does not exist."""
        return self.public or viewer.owns(self.owner)

    @property
    def description(self) -> str:
        return self.version.manifest.description if self.version else ""

    def load_error(self) -> ModelLoadFailed:
        return ModelLoadFailed(str(self.ref), self.error or "it has not finished loading")

    async def start(self) -> None:
        """Start `min` replicas, at least one to learn the model's signature; ready as soon as
        one is, failed only if all of them fail. With `min` 0 that one stops once loaded: ready
        with none running, and the first prediction starts one (see scheduler.autoscale)."""
        if self.version is None:
            return
        python = None
        if self.builder is not None and self.builder.needs_build(self.version):
            try:
                python = await self._build(self.builder, self.version)
            except ModelLoadFailed as exc:
                self._settle(DeploymentStatus.FAILED, exc.reason)
                return
            except Exception as exc:  # a bug must not leave it `building` for good
                log.error("building %s's environment failed unexpectedly", self.ref, exc_info=exc)
                reason = f"building its environment failed: {type(exc).__name__}: {exc}"
                self._settle(DeploymentStatus.FAILED, reason)
                return
        self.pool = pool = Pool.for_version(
            self.version, self._setup_failed, self.placement, python=python
        )
        self.scheduler = scheduler = Scheduler(
            str(self.ref),
            self.version.manifest.batching,
            restart=pool.restart,
            on_unavailable=self._unavailable,
            on_batch=self._batch_ran,
            scaling=Scaling(self.replicas, self._grow, self._retire),
        )
        keep = self.replicas.min > 0
        results = await asyncio.gather(
            *(
                scheduler.starting(partial(self._start_replica, pool.add(), attach=keep))
                for _ in range(max(self.replicas.min, 1))
            ),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, Exception)]
        for error in errors:
            if isinstance(error, ModelLoadFailed):
                self._setup_failed(error)
        if len(errors) == len(results):
            first = errors[0]
            if isinstance(first, ModelLoadFailed):
                reason = first.reason
            else:
                log.error("starting %s failed unexpectedly", self.ref, exc_info=first)
                reason = f"starting a replica failed: {type(first).__name__}: {first}"
            await scheduler.close()  # failed: no replica is started again for min or a scale
            self._settle(DeploymentStatus.FAILED, reason)

    async def _build(self, builder: Builder, version: ModelVersion) -> Path:
        """Its own environment's python: BUILDING while pip runs, then DEPLOYING."""
        self.build_log = ""
        self._moved(DeploymentStatus.BUILDING)
        python = await builder.build(version, self._build_logged)
        self._moved(DeploymentStatus.DEPLOYING)
        return python

    def _build_logged(self, line: str) -> None:
        self.build_log = (self.build_log + line + "\n")[-MAX_LOGS:]
        self.on_change()

    def _moved(self, status: DeploymentStatus) -> None:
        """A step on the way to settling (building -> deploying): nothing waits on it."""
        self.status, self.error = status, None
        self.updated_at = datetime.now(UTC)
        self.on_change()

    def _batch_ran(self, seconds: float) -> None:
        self.admission.observe(seconds)
        self.metrics.statistics.executions += 1

    def _unavailable(self, reason: str) -> None:
        self._settle(DeploymentStatus.FAILED, reason)

    def _setup_failed(self, exc: ModelLoadFailed) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        entry = f"[{stamp}] replica setup failed: {exc.reason}\n{exc.traceback}"
        self.logs = (self.logs + entry)[-MAX_LOGS:]
        self.on_change()

    async def scale(self, replicas: ReplicaRange) -> None:
        """Run between these bounds from now on: replicas start or stop in the background as
        the queue and the range say; the queue's bound and ETA count the new max at once."""
        self.replicas = replicas
        self.admission.resize(replicas.max)
        if self.scheduler is not None:
            self.scheduler.rescale(replicas)
        self.on_change()

    async def _grow(self) -> None:
        """One more replica for the queue (the scheduler's rule asked for it); a setup that
        fails is in the logs, as at start."""
        assert self.pool is not None
        try:
            await self._start_replica(self.pool.add())
        except ModelLoadFailed as exc:
            self._setup_failed(exc)
            raise

    async def _retire(self, replica: ReplicaHandle) -> None:
        """Stop a replica the scheduler has let go (idle, or beyond the range's max). The pool
        forgets it once stopped: a stop cut short (the deployment stopping) leaves it to the
        pool's."""
        self.on_change()  # the running count
        await replica.stop()
        if self.pool is not None:
            self.pool.discard(replica)

    async def _start_replica(self, replica: ReplicaHandle, *, attach: bool = True) -> None:
        """Load `replica` and hand it to the scheduler; or with `attach` False only learn the
        signature from it and stop it (a version that runs none while idle)."""
        try:
            signature = await replica.start()
        except Exception:  # it stopped itself; canceled, it stays for the pool's stop to end
            if self.pool is not None:
                self.pool.discard(replica)
            raise
        assert self.scheduler is not None
        if self.validator is None:
            try:
                validator = InputValidator(signature.input_schema)
            except ValueError as exc:
                await self._retire(replica)
                reason = f"its input schema cannot be used to validate inputs: {exc}"
                raise ModelLoadFailed(str(self.ref), reason) from exc
            self.signature, self.validator = signature, validator
            self.on_change()
        if attach:
            self.scheduler.attach(replica)
            self.on_change()  # the running count
        else:
            await self._retire(replica)
        if self.status is DeploymentStatus.DEPLOYING:
            self._settle(DeploymentStatus.READY, None)

    def _settle(self, status: DeploymentStatus, error: str | None) -> None:
        self.status, self.error = status, error
        self.updated_at = datetime.now(UTC)
        if status is DeploymentStatus.READY:
            self.ready_at = self.updated_at
        self.settled.set()
        self.on_change()
        if error:
            log.error("deployment %s (%s) failed: %s", self.id, self.ref, error)
        else:
            log.info("deployment %s (%s) is ready", self.id, self.ref)

    async def stop(self, drain: bool = True) -> None:
        """Stop serving: from now on a new prediction is told it is not ready; with `drain`
        the queued and running ones finish first; then its replicas stop. Its status is
        STOPPED, but a broken version's (no folder to run) stays FAILED. Whoever still waits
        for a start that was canceled wakes and is told it is not ready."""
        if self.version is not None and self.status is not DeploymentStatus.STOPPED:
            self.status, self.error = DeploymentStatus.STOPPED, None
            self.stopped_at = self.updated_at = datetime.now(UTC)
            self.on_change()
        self.settled.set()
        if drain:
            await self.drained()
        # Unset first: nothing may be queued on a scheduler being closed (see PredictionTask).
        scheduler, pool, self.scheduler, self.pool = self.scheduler, self.pool, None, None
        if scheduler is not None or pool is not None:
            self._halting = asyncio.ensure_future(_stop_replicas(scheduler, pool))
        if self._halting is not None:
            # Shielded, and waited for by the next stop: a stop canceled half-way (a removal's,
            # when the server stops) must not leave its replicas running.
            await asyncio.shield(self._halting)
        # The running count, now none: a view read while it drained still showed its replicas.
        self.on_change()

    async def drained(self) -> None:
        """Wait until none of its predictions is unfinished: queued, running, or waiting for
        it to load (each holds its place in `admission` until it ends)."""
        await self.admission.drained()

    def reopen(self) -> None:
        """Make a stopped or failed deployment startable again: deploying, with a `settled`
        event of its own (the old one stays set for whoever read it); `start` makes a fresh
        scheduler and pool."""
        self.status, self.error = DeploymentStatus.DEPLOYING, None
        self.settled = asyncio.Event()
        self.updated_at = datetime.now(UTC)
        self.on_change()


async def _stop_replicas(scheduler: Scheduler | None, pool: Pool | None) -> None:
    if scheduler is not None:
        await scheduler.close()
    if pool is not None:
        await pool.stop()
