"""The server's handle on one replica running as a Ray actor: the same ReplicaHandle as a thread
or a worker process, so the scheduler neither knows nor asks where a replica runs.

A Ray actor lost with its process or its node fails the batch it ran as WorkerCrashed (an
`internal` error) naming the node and Ray's cause; the scheduler's restart then waits for Ray
to bring the same actor back (`max_restarts`: Ray places it again and it loads the model
again) or, once Ray has given up on it, creates a new one. Every Ray call is bounded: setup by
`timeouts.setup_s`, a batch by `timeouts.predict_s`, joining the cluster by CONNECT_TIMEOUT_S;
only `watch`, whose failing is the news, waits for as long as the actor lives.

The server joins as a Ray driver, so this machine must be a node of the cluster (Ray finds the
raylet it talks to on the local machine). A lost head (the GCS) no longer ends the server after
Ray's 60 s (pool.py sets the limit before Ray is imported): actors on other nodes answer until
their own raylets give up, then the models placed there fail while the local ones serve; a head
that must survive its machine needs Ray's GCS fault tolerance (an external Redis).

Imported only when a model is placed on Ray: the embedded default never imports `ray`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayError

from foretell.errors import ModelLoadFailed, WorkerCrashed
from foretell.manifest import ModelVersion, RayOptions, Signature
from foretell.workers.logs import LOGS_CAP
from foretell.workers.protocol import Chunk, Done, Outcome, Predict, Ready, Setup, SetupFailed
from foretell.workers.ray_actor import Node, ReplicaActor

log = logging.getLogger(__name__)

NAMESPACE = "foretell"
CONNECT_TIMEOUT_S = 60.0  # ray.init, once the head answered on its port
REACH_TIMEOUT_S = 5.0  # a TCP connection to the head's port, before ray.init (which would hang)
CLUSTER_QUERY_TIMEOUT_S = 10.0
# Asking an actor between lives again: Ray answers such a call at once, with no way to wait
# for the actor's next life, so this is a poll (bounded by the setup timeout).
UNAVAILABLE_RETRY_S = 0.5
_batch_ids = itertools.count(1)


class ClusterUnreachable(Exception):
    """This process could not join the Ray cluster; the message names the address."""


class _ActorGone(Exception):
    """The actor is dead for good (Ray gave up restarting it, or it never started)."""


class RayReplica:
    """One replica of `version` as an actor on the Ray cluster at `address`, reserving what
    `options` asks for, keeping `logs_cap` characters of one input's prints.

    It sends no Chunks while a batch runs: a streamed output and what the model printed come
    whole in the batch's outcomes (`streamed` set), when it ends."""

    def __init__(
        self, version: ModelVersion, options: RayOptions, address: str, logs_cap: int = LOGS_CAP
    ) -> None:
        self.version = version
        self.options = options
        self.address = address
        self._logs_cap = logs_cap
        self.setup_time = 0.0
        self.on_exit: Callable[[], None] = lambda: None
        self._actor: ActorHandle[Any] | None = None
        self._node: Node | None = None
        self._lost: str | None = None  # why the actor is not usable now; None while it is
        self._busy = False
        self._batch_id = 0
        self._watcher: asyncio.Task[None] | None = None

    @property
    def ref(self) -> str:
        return str(self.version.ref)

    @property
    def node(self) -> Node | None:
        """Where the actor ran when last seen ready."""
        return self._node

    @property
    def alive(self) -> bool:
        return self._actor is not None and self._lost is None

    async def start(self) -> Signature:
        """Join the cluster (once per process), then wait for the actor's setup: the existing
        actor's, which Ray may be restarting, else a new one's. ModelLoadFailed says why not."""
        try:
            await connect(self.address)
        except ClusterUnreachable as exc:
            raise ModelLoadFailed(self.ref, str(exc)) from None
        self._stop_watching()
        if self._actor is not None:
            try:
                return await self._ready(self._actor)
            except _ActorGone as exc:
                log.warning(
                    "replica of %s: Ray gave up on its actor (%s); a new one", self.ref, exc
                )
        await self._check_feasible()
        self._actor = self._create()
        try:
            return await self._ready(self._actor)
        except _ActorGone as exc:
            raise ModelLoadFailed(self.ref, f"its Ray actor did not start: {exc}") from None

    def _create(self) -> ActorHandle[Any]:
        options = self.options
        actor: ActorHandle[Any] = ReplicaActor.options(  # type: ignore[attr-defined, unused-ignore]
            num_cpus=options.num_cpus,
            num_gpus=options.num_gpus,
            resources=dict(options.resources),
            max_restarts=options.max_restarts,
            # A batch that was running when the actor died fails: running it again is the
            # scheduler's decision (it is not: the prediction fails as internal), never Ray's.
            max_task_retries=0,
            scheduling_strategy="SPREAD" if options.strategy == "spread" else "DEFAULT",
        ).remote(Setup(self.version, self._logs_cap))
        return actor

    async def _ready(self, actor: ActorHandle[Any]) -> Signature:
        timeout = self.version.manifest.timeouts.setup_s
        try:
            async with asyncio.timeout(timeout):
                reply, node = await _ready_reply(actor)
        except TimeoutError:
            self._kill()
            where = f" on {self._node}" if self._node else ""
            reason = (
                f"setup on Ray took longer than {timeout:g} s{where} (timeouts.setup_s), "
                "counting the wait for a node with room for it"
            )
            raise ModelLoadFailed(self.ref, reason) from None
        except RayError as exc:
            self._kill()
            raise _ActorGone(_cause(exc)) from None
        if isinstance(reply, SetupFailed):
            self._kill()
            raise ModelLoadFailed(self.ref, f"{reply.reason} (on {node})", reply.traceback)
        assert isinstance(reply, Ready)
        self._node, self._lost, self.setup_time = node, None, reply.setup_time
        self._watch(actor)
        log.info("replica of %s is ready on %s", self.ref, node)
        return reply.signature

    async def predict(
        self, inputs: Sequence[dict[str, Any]], on_chunk: Callable[[Chunk], None] | None = None
    ) -> list[Outcome]:
        """Run one batch on the actor; WorkerCrashed names the node and Ray's cause when the
        actor or its node is lost, or says the batch overran timeouts.predict_s."""
        actor = self._actor
        if actor is None or self._lost is not None:
            raise WorkerCrashed(self.ref, None, self._lost or "the replica is not running")
        batch_id = self._batch_id = next(_batch_ids)
        timeout = self.version.manifest.timeouts.predict_s
        self._busy = True
        try:
            async with asyncio.timeout(timeout):
                done = await actor.predict.remote(Predict(batch_id, list(inputs)))
        except TimeoutError:
            # Ray cannot stop a running task safely: a new actor serves what comes next.
            self._kill()
            reason = (
                f"model '{self.ref}' ran longer than its {timeout:g} s limit "
                f"(timeouts.predict_s) on {self._node}; its replica was restarted"
            )
            raise WorkerCrashed(self.ref, None, reason) from None
        except RayError as exc:
            self._lost = self._lost_reason(exc)
            raise WorkerCrashed(self.ref, None, self._lost) from None
        finally:
            self._busy = False
        if not isinstance(done, Done) or done.batch_id != batch_id:
            raise WorkerCrashed(self.ref, None, f"the replica on {self._node} answered out of turn")
        return done.outcomes

    def interrupt(self) -> bool:
        """Raise Interrupted in the running batch; after `timeouts.cancel_grace_s` still running,
        kill the actor, which Ray restarts (its in-flight batch fails, as canceled work may)."""
        actor = self._actor
        if not self._busy or actor is None or self._lost is not None:
            return False
        actor.interrupt.remote(self._batch_id)  # answers at once; nothing waits for it
        grace = self.version.manifest.timeouts.cancel_grace_s
        asyncio.get_running_loop().call_later(grace, self._kill_if_running, self._batch_id)
        return True

    def _kill_if_running(self, batch_id: int) -> None:
        if self._busy and self._batch_id == batch_id and self._actor is not None:
            ray.kill(self._actor, no_restart=False)

    async def stop(self) -> None:
        self._stop_watching()
        self._kill()

    def _kill(self) -> None:
        """End the actor for good (no Ray restart); start() makes a new one."""
        actor, self._actor = self._actor, None
        self._stop_watching()
        if actor is not None:
            with contextlib.suppress(RayError, ValueError):
                ray.kill(actor, no_restart=True)

    def _watch(self, actor: ActorHandle[Any]) -> None:
        self._watcher = asyncio.ensure_future(self._watched(actor, actor.watch.remote()))

    async def _watched(self, actor: ActorHandle[Any], call: Any) -> None:
        try:
            await call
        except RayError as exc:
            if actor is self._actor and self._lost is None:
                self._lost = self._lost_reason(exc)
                log.warning("%s", self._lost)
                self.on_exit()  # the scheduler replaces an idle replica found dead at once

    def _stop_watching(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()

    def _lost_reason(self, exc: BaseException) -> str:
        where = str(self._node) if self._node else "a Ray node"
        return f"the replica of model '{self.ref}' on {where} was lost: {_cause(exc)}"

    async def _check_feasible(self) -> None:
        """Fail at once, naming what is missing, when no node of the cluster could ever hold
        one replica (Ray would keep the actor pending forever)."""
        try:
            async with asyncio.timeout(CLUSTER_QUERY_TIMEOUT_S):
                nodes = await asyncio.to_thread(ray.nodes)
        except (TimeoutError, RayError):
            return  # the actor's own setup timeout still bounds the wait
        wanted = _wanted(self.options)
        alive = [n for n in nodes if n.get("Alive")]
        if any(_fits(n.get("Resources", {}), wanted) for n in alive):
            return
        have = "; ".join(
            f"{n.get('NodeManagerAddress')}: {_resources(n.get('Resources', {}))}" for n in alive
        )
        reason = (
            f"no node of the Ray cluster at {self.address} has what one replica reserves "
            f"({_resources(wanted)}); its nodes have {have or 'nothing (none alive)'}"
        )
        raise ModelLoadFailed(self.ref, reason)


async def _ready_reply(actor: ActorHandle[Any]) -> Any:
    """The actor's answer to `ready`, once Ray has it running: a call that finds it between
    lives (its node lost and not yet declared dead, or a restart under way) is asked again."""
    while True:
        try:
            return await actor.ready.remote()
        except ActorUnavailableError:
            await asyncio.sleep(UNAVAILABLE_RETRY_S)


def _wanted(options: RayOptions) -> dict[str, float]:
    wanted = {"CPU": options.num_cpus, "GPU": options.num_gpus, **options.resources}
    return {name: amount for name, amount in wanted.items() if amount > 0}


def _fits(have: dict[str, float], wanted: dict[str, float]) -> bool:
    return all(have.get(name, 0.0) >= amount for name, amount in wanted.items())


def _resources(resources: dict[str, float]) -> str:
    shown = {k: v for k, v in resources.items() if not k.startswith("node:") and "memory" not in k}
    return ", ".join(f"{k} {v:g}" for k, v in sorted(shown.items())) or "none"


_NOISE = re.compile(r"^\s*(class_name|actor_id|pid|namespace|name):")


def _cause(exc: BaseException) -> str:
    """Ray's account of a failure on one line, without its ids and boilerplate."""
    if isinstance(exc, GetTimeoutError):
        return "Ray did not answer in time"
    lines = [line.strip() for line in str(exc).splitlines() if not _NOISE.match(line)]
    text = " ".join(line for line in lines if line and line != ActorDiedError.BASE_ERROR_MSG)
    text = text or f"{type(exc).__name__}: the actor died (Ray gave no cause)"
    return text if len(text) <= 600 else text[:600] + "…"


_connect_lock = threading.Lock()
_connected: str | None = None


async def connect(address: str) -> None:
    """Join the Ray cluster at `address` as a driver, once per process; ClusterUnreachable names
    the address and what went wrong."""
    if _connected == address:
        return
    try:
        async with asyncio.timeout(REACH_TIMEOUT_S + CONNECT_TIMEOUT_S):
            await asyncio.to_thread(_connect, address)
    except TimeoutError:
        raise ClusterUnreachable(
            f"joining the Ray cluster at {address} took longer than "
            f"{REACH_TIMEOUT_S + CONNECT_TIMEOUT_S:g} s"
        ) from None


def _connect(address: str) -> None:
    global _connected
    with _connect_lock:
        if _connected == address:
            return
        if _connected is not None:
            raise ClusterUnreachable(
                f"this server already joined the Ray cluster at {_connected}; "
                f"one process joins one cluster, not also {address}"
            )
        _reach(address)
        try:
            ray.init(
                address=address,
                namespace=NAMESPACE,
                log_to_driver=False,
                configure_logging=False,
            )
        except Exception as exc:
            ray.shutdown()
            raise ClusterUnreachable(
                f"could not join the Ray cluster at {address}: {type(exc).__name__}: {exc}"
            ) from exc
        _connected = address
        log.info("joined the Ray cluster at %s", address)


def _reach(address: str) -> None:
    """A TCP connection to the head's port: ray.init on an address where nothing listens
    retries for minutes before it fails."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ClusterUnreachable(
            f"the Ray cluster at {address} is unreachable: {exc.strerror or exc}"
        ) from None


def disconnect() -> None:
    """Leave the cluster this process joined, if any (its actors end with it); for tests: a
    server leaves when it exits."""
    global _connected
    with _connect_lock:
        if _connected is not None:
            ray.shutdown()
            _connected = None
