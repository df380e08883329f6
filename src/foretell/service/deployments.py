"""Deployments: every version of the repository as a deployment, added and removed while
serving; resolves the model references callers give."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

from foretell.builds import Builder
from foretell.domain import DeploymentStatus, ModelRef
from foretell.domain.access import Principal
from foretell.errors import (
    DeploymentNotFound,
    InvalidRequest,
    ModelNotFound,
    VersionNotFound,
)
from foretell.manifest import ModelVersion, Repository
from foretell.manifest.repository import BrokenVersion
from foretell.service.deployment import Deployment
from foretell.workers import LOCAL, ServerPlacement, isolated

log = logging.getLogger(__name__)

# Starts at once, until the service says how many (`Deployments.start`).
DEFAULT_CONCURRENCY = 2


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


def _broken(b: BrokenVersion) -> Deployment:
    deployment = Deployment(b.owner, b.name, b.number, None)
    deployment._settle(DeploymentStatus.FAILED, b.error.message)
    return deployment
