"""Lifecycle: which versions are served changes while the server runs — rescan, load, unload.

Versions come and go with their folders (a rescan: the watcher's, SIGHUP's, a push's), and a
caller with the deploy scope starts (load) or stops (unload) a version it owns. A version is
immutable: a folder already served is never read again, and a changed manifest in it is said
once in the log. A broken version (never served) is read again when its folder changes, as a
folder being copied in may have been read half-written."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from foretell.domain import DeploymentStatus, ModelRef
from foretell.domain.access import ANONYMOUS_ADMIN, Principal, Scope
from foretell.errors import Forbidden, VersionNotFound
from foretell.manifest import ModelVersion, ReplicaRange, Repository, scan_repository
from foretell.manifest.archive import ArchiveLimits, publish
from foretell.manifest.repository import BrokenVersion
from foretell.service.catalog import Catalog
from foretell.service.deployment import Deployment
from foretell.service.deployments import Deployments
from foretell.service.views import VersionView
from foretell.service.watcher import RepositoryWatcher

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rescanned:
    """What a rescan changed: versions found and started, versions gone and draining."""

    added: tuple[ModelRef, ...] = ()
    removed: tuple[ModelRef, ...] = ()


class Lifecycle:
    """Adds, removes, starts and stops deployments while the server runs."""

    def __init__(self, deployments: Deployments, catalog: Catalog, root: Path) -> None:
        self._deployments = deployments
        self._catalog = catalog
        self._root = root
        self._lock = asyncio.Lock()  # one rescan (or publish) at a time
        self._removals: set[asyncio.Task[None]] = set()
        self._said: set[str] = set()  # what was logged once: changed folders, skipped ones
        self._watcher: RepositoryWatcher | None = None

    def watch(self) -> None:
        """Rescan whenever a version folder is added or removed on disk (see watcher)."""
        if self._watcher is None:
            self._watcher = RepositoryWatcher(self._root, self.rescan)
            self._watcher.start()

    async def close(self) -> None:
        """Stop watching and stop the drains still running (the deployments stop next)."""
        if self._watcher is not None:
            await self._watcher.close()
        for task in self._removals:
            task.cancel()
        await asyncio.gather(*self._removals, return_exceptions=True)

    async def rescan(self) -> Rescanned:
        """Read the repository again: versions new on disk are added and start loading in the
        background; versions gone are hidden at once and drained, then stopped (in the
        background too). A repository root that is missing changes nothing."""
        async with self._lock:
            if not self._root.is_dir():
                log.error("model repository %s is not a folder: nothing rescanned", self._root)
                return Rescanned()
            repository = await asyncio.to_thread(scan_repository, self._root)
            self._say_skipped(repository.skipped)
            found = {(v.owner, v.name, v.number): v for v in _every(repository)}
            added = [ref for v in found.values() if (ref := await self._found(v)) is not None]
            gone = [d for d in self._deployments.all() if (d.owner, d.name, d.number) not in found]
            for deployment in gone:
                self._remove_soon(deployment)
            return Rescanned(tuple(added), tuple(d.ref for d in gone))

    def may_push(self, owner: str, caller: Principal) -> None:
        """Forbidden unless `caller` may push versions of `owner`'s models: the deploy scope
        and `owner`'s key, or an admin key. Asked before a push's body is read."""
        if not caller.can(Scope.DEPLOY):
            raise Forbidden(caller.scope.value, Scope.DEPLOY.value, "pushing a model")
        if not caller.owns(owner):
            action = f"a push to owner '{owner}' (this key's owner is '{caller.owner}')"
            raise Forbidden(caller.scope.value, Scope.ADMIN.value, action)

    async def push(
        self, owner: str, name: str, archive: Path, caller: Principal, limits: ArchiveLimits
    ) -> VersionView:
        """Write the model folder in `archive` (a tar, plain or gzip) into the repository as
        the next version of `owner/name`, whole or not at all (see manifest.archive), and start
        it: its view, loading. ArchiveInvalid, UnpackedTooLarge or ManifestError say what was
        refused, with nothing written."""
        self.may_push(owner, caller)
        found = await asyncio.to_thread(publish, archive, self._root, owner, name, limits)
        return await self.published(owner, name, found.number)

    async def published(self, owner: str, name: str, number: int) -> VersionView:
        """A version just put in place (a push): added and loading, or the one already there
        (the watcher may have seen it first). VersionNotFound if its folder is not there."""
        async with self._lock:
            repository = await asyncio.to_thread(scan_repository, self._root)
            for version in _every(repository):
                if (version.owner, version.name, version.number) == (owner, name, number):
                    await self._found(version)
                    break
        deployment = self._deployments.get(owner, name, number)
        if deployment is None:
            numbers = sorted(self._deployments.models().get((owner, name), {}))
            raise VersionNotFound(f"{owner}/{name}", number, numbers)
        return self._view(deployment)

    async def load(
        self, ref: ModelRef, caller: Principal, replicas: ReplicaRange | None = None
    ) -> VersionView:
        """Start the version `ref` names (stopped or failed: again; loading: as it goes) with
        `replicas` if given, and return its view once it has settled, ready or failed. A ready
        version is rescaled if `replicas` differ, else left as it is."""
        deployment = self._authorized(ref, caller, "loading")
        # A broken version has nothing to scale; the same range again changes nothing.
        changed = replicas is not None and replicas != deployment.replicas
        if replicas is not None and changed and deployment.version is not None:
            log.info("scaling %s to %s", deployment.ref, replicas)
            await deployment.scale(replicas)
        if deployment.status in (DeploymentStatus.STOPPED, DeploymentStatus.FAILED):
            log.info("loading %s (asked by %s)", deployment.ref, _who(caller))
            await self._deployments.restart(deployment)
        await deployment.settled.wait()
        return self._view(deployment)

    async def unload(self, ref: ModelRef, caller: Principal) -> VersionView:
        """Stop the version `ref` names, which stays listed as stopped: new predictions are
        told it is not ready at once; queued and running ones finish first."""
        deployment = self._authorized(ref, caller, "unloading")
        if deployment.status is not DeploymentStatus.STOPPED and deployment.version is not None:
            log.info("unloading %s (asked by %s)", deployment.ref, _who(caller))
        await self._deployments.unload(deployment)
        return self._view(deployment)

    def _authorized(self, ref: ModelRef, caller: Principal, action: str) -> Deployment:
        """The deployment, if `caller` may change it: NotFound for a version it may not see,
        Forbidden without the deploy scope or, on another owner's (public) model, admin."""
        deployment = self._deployments.resolve(ref, caller)
        if not caller.can(Scope.DEPLOY):
            raise Forbidden(caller.scope.value, Scope.DEPLOY.value, f"{action} a model")
        if not caller.owns(deployment.owner):
            action = f"{action} {deployment.owner}'s model '{ref.slug}'"
            raise Forbidden(caller.scope.value, Scope.ADMIN.value, action)
        return deployment

    async def _found(self, version: ModelVersion | BrokenVersion) -> ModelRef | None:
        """Add `version` if it is new (or was broken and reads differently now); its ref if
        it was added."""
        current = self._deployments.get(version.owner, version.name, version.number)
        ref = ModelRef(version.owner, version.name, version.number)
        if current is not None and current.version is None:  # broken, never served
            if isinstance(version, BrokenVersion) and version.error.message == current.error:
                return None
            await self._deployments.remove(version.owner, version.name, version.number)
            current = None
        if current is None:
            self._deployments.add(version)
            if isinstance(version, BrokenVersion):
                log.error("model repository: %s", version.error.message)
            log.info("model repository: added %s", ref)
            return ref
        if isinstance(version, BrokenVersion) or (
            current.version is not None and version.manifest != current.version.manifest
        ):
            self._say_once(
                f"changed:{current.id}",
                f"model repository: {version.path} changed on disk, but a version is "
                f"immutable: {ref} is served as it was first read; add a new version instead",
            )
        return None

    def _remove_soon(self, deployment: Deployment) -> None:
        log.info("model repository: %s is gone; draining it", deployment.ref)
        task = asyncio.create_task(self._remove(deployment), name=f"remove {deployment.ref}")
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    async def _remove(self, deployment: Deployment) -> None:
        try:
            await self._deployments.remove(deployment.owner, deployment.name, deployment.number)
        except Exception:
            log.exception("removing %s failed", deployment.ref)
        else:
            log.info("model repository: removed %s", deployment.ref)

    def _say_skipped(self, skipped: list[str]) -> None:
        for problem in skipped:
            self._say_once(f"skipped:{problem}", f"model repository: {problem}")

    def _say_once(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            log.warning("%s", message)

    def _view(self, deployment: Deployment) -> VersionView:
        return self._catalog.version(deployment.ref, ANONYMOUS_ADMIN)


def _every(repository: Repository) -> list[ModelVersion | BrokenVersion]:
    return [*repository.versions, *repository.broken]


def _who(caller: Principal) -> str:
    return f"key {caller.key_id}" if caller.key_id else "the server's admin"
