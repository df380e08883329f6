"""Deployments: one running copy of each model version, its replicas, status and schema."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from foretell.builds import Builder
from foretell.domain import DeploymentStatus, ModelRef
from foretell.domain.access import Principal
from foretell.errors import (
    DeploymentNotFound,
    InvalidRequest,
    ModelLoadFailed,
    ModelNotFound,
    VersionNotFound,
)
from foretell.manifest import Batching, ModelVersion, ReplicaRange, Repository, Signature
from foretell.manifest.repository import BrokenVersion
from foretell.manifest.schema import InputValidator
from foretell.metrics import ModelMetrics
from foretell.scheduler import Admission, Scaling, Scheduler
from foretell.workers import LOCAL, Pool, ReplicaHandle, ServerPlacement, isolated

log = logging.getLogger(__name__)

MAX_LOGS = 64 * 1024  # a deployment's logs keep their newest characters
# Starts at once, until the service says how many (`Deployments.start`).
DEFAULT_CONCURRENCY = 2


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


class Deployments:
    """Every deployment of a repository, by model and version; resolves model references."""

    def __init__(
        self,
        repository: Repository,
        placement: ServerPlacement = LOCAL,
        builder: Builder | None = None,
    ) -> None:
        self._models: dict[tuple[str, str], dict[int, Deployment]] = {}
        self._on_change: Callable[[], None] = lambda: None
        self._placement = placement
        self._builder = builder
        self.root = repository.root  # where versions are found (see Lifecycle)
        for v in repository.versions:
            self._add(self._new(v))
        for b in repository.broken:
            self._add(_broken(b))
        self._starting: asyncio.Task[None] | None = None
        # Each start in progress, by deployment id: a stop cancels it first.
        self._starts: dict[str, asyncio.Task[None]] = {}
        # Removed (hidden from every lookup) and draining: stopped with the others at the end.
        self._removing: set[Deployment] = set()
        self._turns: dict[str, asyncio.Lock] = {}  # see `_turn`
        # Every start waits here, the first ones and those added later alike (see `start`).
        self._gate = asyncio.Semaphore(DEFAULT_CONCURRENCY)

    def _new(self, version: ModelVersion) -> Deployment:
        return Deployment(
            version.owner,
            version.name,
            version.number,
            version,
            placement=self._placement,
            builder=self._builder,
        )

    def _add(self, deployment: Deployment) -> None:
        deployment.on_change = self._on_change
        self._models.setdefault((deployment.owner, deployment.name), {})[deployment.number] = (
            deployment
        )

    def get(self, owner: str, name: str, number: int) -> Deployment | None:
        """The deployment of this version, whoever may see it; None if there is none."""
        return self._models.get((owner, name), {}).get(number)

    def add(self, version: ModelVersion | BrokenVersion) -> Deployment:
        """The deployment of `version`: the one there already, else a new one, starting in
        the background (a broken version's fails at once, as at startup)."""
        found = self.get(version.owner, version.name, version.number)
        if found is not None:
            return found
        deployment = _broken(version) if isinstance(version, BrokenVersion) else self._new(version)
        self._add(deployment)
        self._on_change()
        if deployment.version is not None:
            self.start_one(deployment)
        return deployment

    def start_one(self, deployment: Deployment) -> None:
        """Start `deployment` in the background, behind the same gate as every other start
        (at most `concurrency` at once); one already starting is left to finish."""
        if deployment.id in self._starts:
            return
        task = asyncio.create_task(self._start_gated(deployment), name=f"deploy {deployment.ref}")
        self._starts[deployment.id] = task
        task.add_done_callback(lambda done: self._started_one(deployment.id, done))

    def _started_one(self, deployment_id: str, task: asyncio.Task[None]) -> None:
        if self._starts.get(deployment_id) is task:
            del self._starts[deployment_id]

    async def _start_gated(self, deployment: Deployment) -> None:
        async with self._gate:
            try:
                await deployment.start()
            except Exception as exc:  # it settles itself; nothing may leave its callers waiting
                log.exception("starting %s failed unexpectedly", deployment.ref)
                if not deployment.settled.is_set():
                    deployment._settle(DeploymentStatus.FAILED, f"starting it failed: {exc!r}")

    async def restart(self, deployment: Deployment) -> None:
        """Start a stopped or failed deployment again: a failed one's replicas are stopped
        first (its queued predictions have failed with it). One loading or ready is left as
        it is, and so is a broken version's (it has nothing to run)."""
        async with self._turn(deployment):
            if deployment.version is None or deployment.loading:
                return
            if deployment.status is DeploymentStatus.READY:
                return
            await self._halt(deployment, drain=True)
            deployment.reopen()
            self.start_one(deployment)

    async def unload(self, deployment: Deployment) -> None:
        """Stop `deployment`, which stays listed as stopped: new predictions are told it is
        not ready; the queued and running ones finish first; then its replicas stop."""
        async with self._turn(deployment):
            await self._halt(deployment, drain=True)

    async def remove(self, owner: str, name: str, number: int) -> Deployment | None:
        """Take the version away: hidden from every lookup at once (a new prediction gets
        VersionNotFound, or ModelNotFound for its model's last version), then drained (its
        queued and running predictions finish), then its replicas stopped. Returns the
        deployment once it has stopped; None if there was none."""
        versions = self._models.get((owner, name))
        deployment = versions.pop(number, None) if versions is not None else None
        if deployment is None:
            return None
        if not versions:
            del self._models[owner, name]
        self._removing.add(deployment)
        self._on_change()
        async with self._turn(deployment):
            await self._halt(deployment, drain=True)
        # Not when canceled (the server stopping): `stop` then stops its replicas with the rest.
        self._removing.discard(deployment)
        return deployment

    def _turn(self, deployment: Deployment) -> asyncio.Lock:
        """One restart, unload or removal of `deployment` at a time: two at once could stop
        the replicas the other had just started, or leave a load waiting on a start replaced."""
        return self._turns.setdefault(deployment.id, asyncio.Lock())

    async def _halt(self, deployment: Deployment, *, drain: bool) -> None:
        """Cancel its start if one runs (whoever waits for it wakes, not ready), then stop."""
        task = self._starts.pop(deployment.id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await deployment.stop(drain=drain)

    def watch(self, on_change: Callable[[], None]) -> None:
        """Call `on_change` whenever any deployment changes what a view of it shows."""
        self._on_change = on_change
        for deployment in self.all():
            deployment.on_change = on_change

    def all(self) -> list[Deployment]:
        return [d for versions in self._models.values() for d in versions.values()]

    def models(
        self, viewer: Principal | None = None
    ) -> dict[tuple[str, str], dict[int, Deployment]]:
        """Every model with its versions; with `viewer`, only what that caller may see."""
        found = {}
        for model, versions in sorted(self._models.items()):
            shown = _visible(versions, viewer)
            if shown:
                found[model] = shown
        return found

    def versions(
        self, owner: str, name: str, viewer: Principal | None = None
    ) -> dict[int, Deployment]:
        """A model's versions (those `viewer` may see); ModelNotFound if there are none."""
        versions = _visible(self._models.get((owner, name), {}), viewer)
        if not versions:
            raise ModelNotFound(f"{owner}/{name}")
        return versions

    def by_model_id(self, model_id: str, viewer: Principal | None = None) -> tuple[str, str]:
        """(owner, name) of the model with this DNS-safe id (`owner-name`, see model_id_of).
        Two models can share one (a/b-c and a-b/c): then the id names neither."""
        found = [m for m in self.models(viewer) if model_id_of(*m) == model_id]
        if len(found) > 1:
            names = ", ".join(f"{o}/{n}" for o, n in found)
            raise InvalidRequest(
                f"model id '{model_id}' is ambiguous: it stands for {names}; call one of them "
                "by owner/name through another API"
            )
        if not found:
            raise ModelNotFound(model_id)
        return found[0]

    def by_id(self, deployment_id: str, viewer: Principal | None = None) -> Deployment:
        """The deployment with this id (its version's stable hash); DeploymentNotFound if none
        that `viewer` may see."""
        for deployment in self.all():
            if deployment.id == deployment_id and (viewer is None or deployment.visible_to(viewer)):
                return deployment
        raise DeploymentNotFound(deployment_id)

    def lookup(self, name: str, viewer: Principal | None = None) -> Deployment:
        """The deployment a caller names as `owner/name[:version]` (see `resolve`): how every
        dialect reads a model name it takes whole. A name no model could have ('acme/-x',
        'x/y|z') is ModelNotFound, as an unknown one is, never a malformed-name crash."""
        try:
            ref = ModelRef.parse(name)
        except ValueError:
            raise ModelNotFound(name) from None
        return self.resolve(ref, viewer)

    def resolve(self, ref: ModelRef, viewer: Principal | None = None) -> Deployment:
        """The named version, or the latest ready one (else the latest still building or
        deploying, else the newest), among those `viewer` may see."""
        versions = self.versions(ref.owner, ref.name, viewer)
        if ref.version is not None:
            if ref.version not in versions:
                raise VersionNotFound(ref.slug, ref.version, sorted(versions))
            return versions[ref.version]
        newest_first = [versions[n] for n in sorted(versions, reverse=True)]
        ready = [d for d in newest_first if d.status is DeploymentStatus.READY]
        loading = [d for d in newest_first if d.loading]
        return (ready or loading or newest_first)[0]

    def start(self, concurrency: int) -> None:
        """Load every deployment in the background, `concurrency` at a time (those added
        later too)."""
        self._gate = asyncio.Semaphore(concurrency)
        self._starting = asyncio.create_task(self._start_all(), name="deploy")

    async def started(self) -> None:
        """Wait until every deployment has settled (ready or failed)."""
        if self._starting is not None:
            await asyncio.shield(self._starting)

    @property
    def first_load_settled(self) -> bool:
        """Whether every version found at startup has settled; those added later do not count."""
        return self._starting is not None and self._starting.done()

    async def _start_all(self) -> None:
        # Thread replicas first: they load in the server's process in milliseconds, while a
        # process replica spawns an interpreter and may import torch or numba for seconds; so
        # the light models answer without waiting behind the heavy ones for a loading slot
        # (the gate lets waiters in in the order they came).
        ordered = sorted(self.all(), key=lambda d: d.version is not None and isolated(d.version))
        for deployment in ordered:
            if deployment.version is not None:
                self.start_one(deployment)
        # Each deployment settles itself, failed or ready; one cannot stop the others loading.
        starts = [self._starts[d.id] for d in ordered if d.id in self._starts]
        await asyncio.gather(*starts, return_exceptions=True)

    async def stop(self) -> None:
        """Stop every deployment's replicas, without draining: the service has already put
        back or finished its predictions."""
        if self._starting is not None:
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
        starts = list(self._starts.values())
        for task in starts:
            task.cancel()
        await asyncio.gather(*starts, return_exceptions=True)
        stopping = [*self.all(), *self._removing]
        await asyncio.gather(*(d.stop(drain=False) for d in stopping))


def model_id_of(owner: str, name: str) -> str:
    """A model's DNS-safe id, for host names such as model-{id}.example.com: `owner-name`,
    lowercased, anything but letters, digits and '-' as '-'."""
    return re.sub(r"[^a-z0-9-]", "-", f"{owner}-{name}".lower())


def _visible(versions: dict[int, Deployment], viewer: Principal | None) -> dict[int, Deployment]:
    return {n: d for n, d in sorted(versions.items()) if viewer is None or d.visible_to(viewer)}


async def _stop_replicas(scheduler: Scheduler | None, pool: Pool | None) -> None:
    if scheduler is not None:
        await scheduler.close()
    if pool is not None:
        await pool.stop()


def _broken(b: BrokenVersion) -> Deployment:
    deployment = Deployment(b.owner, b.name, b.number, None)
    deployment._settle(DeploymentStatus.FAILED, b.error.message)
    return deployment
