"""Replicas as actors on a real two-node Ray cluster (127.0.0.2 and 127.0.0.3, one per module):
first RayReplica itself in this process, then `foretell serve` processes placing models there.

A replica answers with the model's own results and errors as data and says on which node it
runs; a setup that fails, a batch past its timeout, an interrupt and a resource no node has
each end as they do for a local worker. A node SIGKILLed mid-batch fails that batch as an
internal error naming the node, and the next predictions run on the other node. A cluster
that cannot be reached at start fails the models placed there, naming its address, while the
other models serve.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from _ray import HEAD_IP, WORKER_IP, RayCluster, ray_cluster
from _server import (
    FIXTURE_MODELS,
    build_repository,
    free_port,
    running_server,
    sigkill,
    sigterm,
    wait_for,
)

from foretell.errors import ModelLoadFailed, WorkerCrashed
from foretell.manifest import ModelVersion, RayOptions, Timeouts, scan_repository
from foretell.workers import Outcome

if TYPE_CHECKING:
    from foretell.workers.ray_actor import Node

pytestmark = pytest.mark.slow

# Generous bounds for a busy machine; each test waits for an event or an answer, not this long.
WITHIN_S = 60.0
TERMINAL = {"succeeded", "failed", "canceled"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    with ray_cluster() as started:
        yield started


@pytest.fixture(scope="module")
def driver(cluster: RayCluster) -> Iterator[ProcessPoolExecutor]:
    """A process of its own that joins the cluster, as a server does: Ray reads its token
    settings from the environment once, when it is imported, so they are set first there."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, spawn, initializer=_set_env, initargs=(cluster.env,)) as pool:
        yield pool


def _set_env(env: dict[str, str]) -> None:
    os.environ.update(env)


def drive(driver: ProcessPoolExecutor, scenario: Any, *args: Any) -> Any:
    """Run async `scenario(*args)` in the driver process; what it returns, or what it raised."""
    return driver.submit(_run, scenario, *args).result(timeout=WITHIN_S * 3)


def _run(scenario: Any, *args: Any) -> Any:
    return asyncio.run(scenario(*args))


def fixture_version(name: str, **timeouts: float) -> ModelVersion:
    [version] = [v for v in scan_repository(FIXTURE_MODELS.parent).versions if v.name == name]
    if timeouts:
        manifest = version.manifest.model_copy(update={"timeouts": Timeouts(**timeouts)})
        version = dataclasses.replace(version, manifest=manifest)
    return version


@asynccontextmanager
async def on_ray(
    address: str, name: str, options: RayOptions | None = None, **timeouts: float
) -> AsyncIterator[Any]:
    """A started RayReplica of fixture model `name`; its actor ended on the way out."""
    from foretell.workers.ray_replica import RayReplica

    replica = RayReplica(fixture_version(name, **timeouts), options or RayOptions(), address)
    try:
        await replica.start()
        yield replica
    finally:
        await replica.stop()


async def answers(address: str) -> tuple[Outcome, Node, float, int]:
    async with on_ray(address, "sleeps-reporting-pid") as replica:
        [outcome] = await replica.predict([{"seconds": 0}])
        # The session of the actor's process tells its node: asked while it still runs.
        return outcome, replica.node, replica.setup_time, os.getsid(outcome.output["pid"])


def test_a_replica_answers_on_a_node_and_says_which(cluster: RayCluster, driver: Any) -> None:
    outcome, node, setup_time, session = drive(driver, answers, cluster.address)

    assert outcome.error is None, outcome
    where = cluster.node_by_session(session)
    assert where is not None, "the model ran outside both nodes"
    assert node.ip == {"head": HEAD_IP, "worker": WORKER_IP}[where]
    assert node.pid == outcome.output["pid"]
    assert setup_time > 0


async def raises_in_predict(address: str) -> Outcome:
    async with on_ray(address, "raises-in-predict") as replica:
        [outcome] = await replica.predict([{"text": "x"}])
        return outcome


def test_the_models_own_errors_come_back_as_data(cluster: RayCluster, driver: Any) -> None:
    outcome = drive(driver, raises_in_predict, cluster.address)

    assert outcome.output is None
    assert "boom: cannot predict" in (outcome.error or "")


async def draws(address: str) -> Outcome:
    async with on_ray(address, "draws-image") as replica:
        [outcome] = await replica.predict([{"size": 3, "colour": "navy"}])
        return outcome


def test_a_file_the_model_wrote_comes_back_as_its_bytes(cluster: RayCluster, driver: Any) -> None:
    outcome = drive(driver, draws, cluster.address)

    assert outcome.error is None, outcome
    assert outcome.files
    assert (outcome.output.name, outcome.output.content_type) == ("navy-3.png", "image/png")
    assert outcome.output.data.startswith(b"\x89PNG\r\n\x1a\n")


async def load_failure(address: str, name: str, options: RayOptions | None = None) -> Any:
    """ModelLoadFailed's reason and traceback (the exception itself does not unpickle)."""
    try:
        async with on_ray(address, name, options):
            return None
    except ModelLoadFailed as exc:
        return exc.reason, exc.traceback


def test_a_setup_that_fails_says_why_and_where(cluster: RayCluster, driver: Any) -> None:
    reason, traceback = drive(driver, load_failure, cluster.address, "raises-in-setup")

    assert "setup exploded" in reason
    assert "on Ray node 127.0.0." in reason
    assert "RuntimeError" in traceback


async def interrupted(address: str) -> tuple[Outcome, Outcome, Outcome, float]:
    async with on_ray(address, "spins") as replica:
        [before] = await replica.predict([{"seconds": 0}])
        running = asyncio.create_task(replica.predict([{"seconds": 30}]))
        await asyncio.sleep(1.0)  # into the model's loop (an interrupt before it works too)
        started = time.monotonic()
        assert replica.interrupt(), "the batch was not running"
        [outcome] = await asyncio.wait_for(running, WITHIN_S)
        took = time.monotonic() - started
        [after] = await replica.predict([{"seconds": 0}])
        return before, outcome, after, took


def test_an_interrupt_stops_the_batch_and_the_actor_serves_on(
    cluster: RayCluster, driver: Any
) -> None:
    before, outcome, after, took = drive(driver, interrupted, cluster.address)

    assert outcome.error == "Interrupted: the prediction was canceled"
    assert took < 15  # not the 30 s the batch asked for
    assert after.output["pid"] == before.output["pid"]  # the same actor, not a new one


async def overruns(address: str) -> tuple[int, str, bool, int]:
    async with on_ray(address, "sleeps-reporting-pid", predict_s=1) as replica:
        [first] = await replica.predict([{"seconds": 0}])
        try:
            await replica.predict([{"seconds": 20}])
        except WorkerCrashed as exc:
            crashed = exc.message
        alive = replica.alive
        await replica.start()
        [second] = await replica.predict([{"seconds": 0}])
        return first.output["pid"], crashed, alive, second.output["pid"]


def test_a_batch_past_its_timeout_fails_and_a_new_actor_follows(
    cluster: RayCluster, driver: Any
) -> None:
    first, crashed, alive, second = drive(driver, overruns, cluster.address)

    assert "ran longer than its 1 s limit (timeouts.predict_s) on Ray node 127.0.0." in crashed
    assert not alive
    assert second != first


def test_a_resource_no_node_has_fails_at_once_naming_it(cluster: RayCluster, driver: Any) -> None:
    options = RayOptions(resources={"gpu_type:A100": 1})
    started = time.monotonic()

    reason, _ = drive(driver, load_failure, cluster.address, "echo", options)

    assert time.monotonic() - started < 30  # not the setup timeout (300 s)
    assert f"no node of the Ray cluster at {cluster.address}" in reason
    assert "gpu_type:A100 1" in reason


async def killed_while_idle(address: str) -> tuple[int, bool, int]:
    async with on_ray(address, "sleeps-reporting-pid") as replica:
        [before] = await replica.predict([{"seconds": 0}])
        lost = asyncio.Event()
        replica.on_exit = lost.set
        os.kill(before.output["pid"], signal.SIGKILL)
        await asyncio.wait_for(lost.wait(), WITHIN_S)
        alive = replica.alive
        await replica.start()  # Ray's own restart (max_restarts), the model loaded again
        [after] = await replica.predict([{"seconds": 0}])
        return before.output["pid"], alive, after.output["pid"]


def test_an_idle_actor_killed_is_noticed_and_ray_restarts_it(
    cluster: RayCluster, driver: Any
) -> None:
    before, alive, after = drive(driver, killed_while_idle, cluster.address)

    assert not alive
    assert after != before


# The server's side: `foretell serve` joined to the cluster, fixtures/on-ray's two replicas
# placed by its manifest (one CPU each, spread), fixtures/echo on this machine.


def create(client: httpx.Client, model: str, input: dict[str, Any], **headers: str) -> Any:
    response = client.post(
        "/v1/predictions", json={"model": model, "input": input}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def settle(client: httpx.Client, prediction_id: str) -> Any:
    def terminal() -> Any:
        record = client.get(f"/v1/predictions/{prediction_id}").json()
        return record if record["status"] in TERMINAL else None

    return wait_for(terminal, timeout=WITHIN_S, interval=0.1, what=f"{prediction_id} to end")


def test_unreachable_cluster_fails_the_models_placed_there_and_the_rest_serve(
    tmp_path: Path,
) -> None:
    repo = build_repository(tmp_path, demo=False, fixtures=["on-ray", "echo"])
    nowhere = f"{HEAD_IP}:{free_port()}"  # nothing listens there

    with (
        running_server(repo, tmp_path / "data", env={"FORETELL_RAY_ADDRESS": nowhere}) as server,
        server.client() as client,
    ):
        [version] = client.get("/v1/models/fixtures/on-ray").json()["versions"]
        echoed = create(client, "fixtures/echo", {"text": "hi"}, Prefer="wait=30")

    assert version["deployment"]["status"] == "failed"
    assert f"the Ray cluster at {nowhere} is unreachable" in version["deployment"]["error"]
    assert echoed["status"] == "succeeded", echoed


@pytest.fixture(scope="module")
def server(cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("ray-server")
    repo = build_repository(root, demo=False, fixtures=["on-ray", "echo"])
    with running_server(repo, root / "data", env=cluster.env) as started:
        yield started


def test_replicas_spread_over_both_nodes(cluster: RayCluster, server: Any) -> None:
    with server.client() as client, ThreadPoolExecutor(2) as pool:
        # Two at once, each long enough that the other cannot take both: one per replica.
        records = list(
            pool.map(
                lambda _: create(client, "fixtures/on-ray", {"seconds": 1}, Prefer="wait=30"),
                range(2),
            )
        )

    assert [r["status"] for r in records] == ["succeeded", "succeeded"], records
    assert {cluster.node_of(r["output"]["pid"]) for r in records} == {"head", "worker"}


def test_a_node_killed_mid_batch_fails_it_naming_the_node_and_the_other_serves(
    cluster: RayCluster, server: Any
) -> None:
    with server.client() as client:
        running = [create(client, "fixtures/on-ray", {"seconds": 8}) for _ in range(2)]
        wait_for(
            lambda: all(
                client.get(f"/v1/predictions/{r['id']}").json()["status"] == "processing"
                for r in running
            ),
            timeout=WITHIN_S,
            what="both replicas busy",
        )

        cluster.kill("worker")
        ended = [settle(client, r["id"]) for r in running]
        after = [
            create(client, "fixtures/on-ray", {"seconds": 0}, Prefer="wait=30") for _ in range(3)
        ]

    try:
        [failed] = [r for r in ended if r["status"] == "failed"]
        [succeeded] = [r for r in ended if r["status"] == "succeeded"]
        assert failed["error"]["source"] == "internal", failed
        assert f"on Ray node {WORKER_IP}" in failed["error"]["message"], failed
        assert cluster.node_of(succeeded["output"]["pid"]) == "head"
        assert [r["status"] for r in after] == ["succeeded"] * 3, after
        assert {cluster.node_of(r["output"]["pid"]) for r in after} == {"head"}
    finally:
        cluster.up()  # the worker node back, as a new node, for whatever runs next


@pytest.mark.parametrize("stop", [sigkill, sigterm], ids=["sigkill", "sigterm"])
def test_no_actor_outlives_its_server(cluster: RayCluster, tmp_path: Path, stop: Any) -> None:
    """Stopped, a server ends its actors; SIGKILLed, it runs no cleanup and Ray ends the actors
    it owned (their owner, the driver, is gone): no replica goes on with a batch that a
    restarted server runs again. A server on Ray exits as promptly as one without."""
    repo = build_repository(tmp_path, demo=False, fixtures=["on-ray"])
    with running_server(repo, tmp_path / "data", env=cluster.env) as server:
        with server.client() as client, ThreadPoolExecutor(2) as pool:
            records = list(
                pool.map(
                    lambda _: create(client, "fixtures/on-ray", {"seconds": 1}, Prefer="wait=30"),
                    range(2),
                )
            )
        pids = {r["output"]["pid"] for r in records}
        assert len(pids) == 2, records
        assert all(cluster.node_of(p) for p in pids), records
        stop(server)  # waits for the server and every process of its session to exit

    wait_for(
        lambda: not any(cluster.node_of(p) for p in pids),
        timeout=WITHIN_S,
        what=f"the actors {sorted(pids)} to end with their server",
    )


def test_actors_scale_to_zero_and_back_as_local_replicas_do(
    cluster: RayCluster, tmp_path: Path
) -> None:
    """Given {min: 0, idle_s: 1}, both actors end once idle, and the next prediction starts
    one again: its record shows the setup time."""
    repo = build_repository(tmp_path, demo=False, fixtures=["on-ray"])
    with (
        running_server(repo, tmp_path / "data", env=cluster.env) as server,
        server.client() as client,
    ):
        with ThreadPoolExecutor(2) as pool:
            records = list(
                pool.map(
                    lambda _: create(client, "fixtures/on-ray", {"seconds": 1}, Prefer="wait=30"),
                    range(2),
                )
            )
        pids = {r["output"]["pid"] for r in records}
        assert len(pids) == 2, records
        scaled = client.post(
            "/v1/models/fixtures/on-ray/versions/1/deployment",
            json={"replicas": {"min": 0, "max": 2, "idle_s": 1}},
        )
        assert scaled.status_code == 200, scaled.text

        def running() -> int:
            record = client.get("/v1/models/fixtures/on-ray").json()["versions"][0]
            return int(record["deployment"]["replicas"]["running"])

        wait_for(
            lambda: running() == 0 and not any(cluster.node_of(p) for p in pids),
            timeout=WITHIN_S,
            what=f"the actors {sorted(pids)} to end once idle",
        )
        again = create(client, "fixtures/on-ray", {"seconds": 0}, Prefer="wait=30")
    assert again["status"] == "succeeded", again
    assert again["setup_time"] not in (None, "PT0S"), again
    assert again["output"]["pid"] not in pids
