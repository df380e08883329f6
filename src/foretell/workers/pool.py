"""A deployment's replicas: which kind each is and where, and replacing one that dies."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from foretell.errors import ModelLoadFailed
from foretell.manifest import ModelVersion, RayOptions
from foretell.runtimes.registry import runs_in_process
from foretell.workers.handle import ReplicaHandle
from foretell.workers.inprocess import ThreadReplica
from foretell.workers.placement import LOCAL, ServerPlacement, Unplaced, ray_options
from foretell.workers.replica import WORKER_COMMAND, ProcessReplica

log = logging.getLogger(__name__)

RESTART_ATTEMPTS = 3
RAY_HEAD_LOST_ENV = "RAY_gcs_rpc_server_reconnect_timeout_s"  # Ray's name for it, not ours
RAY_HEAD_LOST_S = 365 * 24 * 3600  # as good as never: the server outlives its Ray head
RESTART_BACKOFF_S = 1.0


def isolated(version: ModelVersion) -> bool:
    """Whether its replicas are processes, as the manifest's `isolation` asks (auto: the
    runtime decides, unless the version has its own environment, which needs a process);
    else threads of the server."""
    isolation = version.manifest.isolation
    if isolation == "auto":
        return version.requirements is not None or not runs_in_process(version.manifest.runtime)
    return isolation == "process"


def new_replica(
    version: ModelVersion, server: ServerPlacement = LOCAL, python: Path | None = None
) -> ReplicaHandle:
    """A replica where the manifest's `placement` (else the server's default) puts it: a Ray
    actor, or on this machine a process or a thread as its `isolation` asks. A process runs
    `python` (the version's own environment), else the server's interpreter."""
    options = ray_options(version, server)
    if options is not None and version.requirements is not None:
        return Unplaced(
            version,
            "its own environment (requirements.txt) is not supported on Ray yet, and this "
            "server places models on Ray: give its manifest 'placement: local'",
        )
    if options is not None:
        return _on_ray(version, options, server)
    if not isolated(version):
        return ThreadReplica(version, logs_cap=server.logs_cap)
    command = WORKER_COMMAND if python is None else (str(python), *WORKER_COMMAND[1:])
    return ProcessReplica(version, command, server.logs_cap)


def _on_ray(version: ModelVersion, options: RayOptions, server: ServerPlacement) -> ReplicaHandle:
    address = server.ray_address
    if address is None:
        return Unplaced(
            version,
            "its manifest places it on Ray, but this server joined no Ray cluster: start it "
            "with --ray-address host:port (FORETELL_RAY_ADDRESS)",
        )
    # Ray ends a driver whose GCS (the head node) stays unreachable for this long, 60 s by
    # default: that would take this server's API and its local models down with a lost head.
    # Ray reads it once, when first imported.
    os.environ.setdefault(RAY_HEAD_LOST_ENV, str(RAY_HEAD_LOST_S))
    try:  # here, not at the top: the embedded default never imports ray
        from foretell.workers.ray_replica import RayReplica
    except ImportError as exc:
        return Unplaced(
            version,
            f"it is placed on Ray, but this server cannot import Ray ({exc}): install "
            "foretell's cluster extra, pip install 'foretell[cluster]'",
        )
    return RayReplica(version, options, address, server.logs_cap)


class Pool:
    """Owns the replicas of one version: `add` makes one more (not started), `discard` forgets
    one that was stopped. A replica that died is started again up to `attempts` times, waiting
    longer after each failed setup; a setup that keeps failing gives up rather than loop, and
    every failure reaches `on_setup_failed` with the model's traceback."""

    def __init__(
        self,
        replicas: list[ReplicaHandle],
        on_setup_failed: Callable[[ModelLoadFailed], None] = lambda exc: None,
        *,
        attempts: int = RESTART_ATTEMPTS,
        backoff_s: float = RESTART_BACKOFF_S,
        make: Callable[[], ReplicaHandle] | None = None,
    ) -> None:
        self.replicas = replicas
        self._make = make
        self._on_setup_failed = on_setup_failed
        self._attempts = attempts
        self._backoff_s = backoff_s

    @classmethod
    def for_version(
        cls,
        version: ModelVersion,
        on_setup_failed: Callable[[ModelLoadFailed], None],
        server: ServerPlacement = LOCAL,
        python: Path | None = None,
    ) -> Pool:
        """An empty pool that makes replicas of `version` where its manifest places them;
        processes run `python` (the version's own environment) if given."""
        return cls([], on_setup_failed, make=lambda: new_replica(version, server, python))

    def add(self) -> ReplicaHandle:
        """One more replica, not yet started."""
        if self._make is None:
            raise ValueError("this pool was given its replicas and makes no more")
        replica = self._make()
        self.replicas.append(replica)
        return replica

    def discard(self, replica: ReplicaHandle) -> None:
        """Forget a replica that was stopped (or never started)."""
        if replica in self.replicas:
            self.replicas.remove(replica)

    async def restart(self, replica: ReplicaHandle) -> bool:
        """Start `replica` again; False once every attempt failed."""
        ref = replica.version.ref
        for attempt in range(1, self._attempts + 1):
            log.warning("replica of %s is gone; starting a new one (try %d)", ref, attempt)
            try:
                await replica.start()
            except ModelLoadFailed as exc:
                self._on_setup_failed(exc)
            except Exception as exc:  # a bug must not end the loop: count it as a failed try
                log.exception("could not restart a replica of %s", ref)
                self._on_setup_failed(ModelLoadFailed(str(ref), repr(exc)))
            else:
                return True
            if attempt < self._attempts:
                await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))
        return False

    async def stop(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.replicas))
