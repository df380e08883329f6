"""The scale-out demo, run by `scripts/cluster.sh demo DIR` on the cluster that `up` started:
nothing accepted is lost, and nothing runs twice to completion, when a Ray node and then an API
process are SIGKILLed mid-run.

    .venv/bin/python scripts/cluster_demo.py DIR

1. Submits DEMO_COUNT (500) asynchronous predictions to demo/counts-runs (examples/cluster: two
   replicas per API process as Ray actors, spread over the head 127.0.0.2 and the worker node
   127.0.0.3), alternating between the two API processes; each sleeps DEMO_MS (50-200) ms, then
   appends `done <tag> <pid>` to DIR/runs/runs.log.
2. Once DEMO_KILL_NODE_AT (0.2) of them are done: SIGKILLs every process of the worker node
   (scripts/ray-cluster.sh kill). Its running predictions fail as internal, naming the node.
3. Once DEMO_KILL_API_AT (0.45) are done and every create is answered: SIGKILLs API process 1's
   process group. Its unfinished predictions wait for their lease (FORETELL_LEASE_S) to expire,
   then API process 2 takes them over: pending ones run there; one that was running when its
   process died fails as internal (cluster.sh sets FORETELL_MAX_RERUNS=0) rather than run again.
4. Reads every accepted prediction from API process 2 until each is terminal, for at most
   DEMO_DEADLINE_S (120) past the lease's expiry, and counts each tag's completions in the log.

Its last line: `A accepted, T terminal (N succeeded, M failed as internal), L lost, R run twice to
completion`: accepted = 201 answers; terminal = those API process 2 reads back in a terminal
state; lost = accepted - terminal; run twice = predictions whose model finished twice or more.
Exits 1 unless every request was accepted, none is lost, none ran twice, and every failure is
internal.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
MODEL = "demo/counts-runs"
NODES = {"head": "127.0.0.2", "worker": "127.0.0.3"}
TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
CONCURRENCY = 16  # requests in flight to each API process


def setting(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass
class Api:
    """One API process of the cluster, as DIR/api-N.* describe it."""

    n: int
    url: str
    pid: int


@dataclass
class Run:
    """What one demo run submitted, and what it learned."""

    dir: Path
    apis: list[Api]
    key: str
    count: int
    started: float = field(default_factory=time.monotonic)
    tag_prefix: str = field(default_factory=lambda: secrets.token_hex(4))
    ids: dict[str, str] = field(default_factory=dict)  # tag -> prediction id, for each 201
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    submitted: bool = False
    done: collections.Counter[str] = field(default_factory=collections.Counter)  # tag -> runs
    done_pids: collections.Counter[int] = field(default_factory=collections.Counter)
    _log_offset: int = 0

    def say(self, line: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {line}", flush=True)

    def read_runs(self) -> int:
        """Counts this run's new completions in runs.log; how many of its tags finished."""
        log = self.dir / "runs" / "runs.log"
        if log.exists():
            with open(log, "rb") as f:
                f.seek(self._log_offset)
                chunk = f.read()
            whole = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits a turn
            self._log_offset += len(whole)
            for line in whole.decode().splitlines():
                word, tag, pid = line.split()
                if word == "done" and tag.startswith(self.tag_prefix + "-"):
                    self.done[tag] += 1
                    self.done_pids[int(pid)] += 1
        return len(self.done)


def read_cluster(folder: Path) -> tuple[list[Api], str]:
    apis = []
    for n in (1, 2):
        port = (folder / f"api-{n}.port").read_text().strip()
        pid = int((folder / f"api-{n}.pid").read_text())
        apis.append(Api(n, f"http://127.0.0.1:{port}", pid))
    key = (folder / "api-1" / "admin-key").read_text().strip()
    return apis, key


def replicas_by_node(folder: Path) -> dict[int, str]:
    """pid -> node (head or worker) of every ReplicaActor process, found by its Ray node's
    session (DIR/ray/NODE.pid)."""
    sessions = {int((folder / "ray" / f"{n}.pid").read_text()): n for n in NODES}
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            sid = os.getsid(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
        if title.startswith(b"ray::ReplicaActor") and sid in sessions:
            found[int(entry.name)] = sessions[sid]
    return found


async def wait_replicas(
    run: Run, clients: list[httpx.AsyncClient], within_s: float
) -> dict[int, str]:
    """Until every replica the API processes run of MODEL is an actor on a Ray node, and both
    nodes hold some: pid -> node of each."""
    wanted = 0
    for client in clients:
        answer = await client.get(f"/v1/models/{MODEL}")
        answer.raise_for_status()
        [version] = answer.json()["versions"]
        # The replicas each keeps running: its range's min (the demo's model runs a fixed count).
        wanted += version["deployment"]["replicas"]["min"]
    deadline = time.monotonic() + within_s
    while True:
        replicas = replicas_by_node(run.dir)
        if len(replicas) >= wanted and set(replicas.values()) == set(NODES):
            return replicas
        if time.monotonic() > deadline:
            raise SystemExit(
                f"cluster_demo: after {within_s:g} s, {len(replicas)} of the {wanted} replicas "
                f"of {MODEL} run on Ray, on {sorted(set(replicas.values()))}; both nodes wanted"
            )
        await asyncio.sleep(0.2)


async def submit(run: Run, clients: list[httpx.AsyncClient], ms: tuple[int, int]) -> None:
    """DEMO_COUNT creates, the i-th to API process i % 2 + 1, CONCURRENCY at a time to each."""
    gates = [asyncio.Semaphore(CONCURRENCY) for _ in clients]
    rng = random.Random(15)

    async def one(i: int) -> None:
        tag = f"{run.tag_prefix}-{i:05d}"
        body = {"model": MODEL, "input": {"tag": tag, "ms": rng.randint(*ms)}}
        side = i % len(clients)
        async with gates[side]:
            try:
                answer = await clients[side].post("/v1/predictions", json=body)
            except httpx.HTTPError as exc:
                run.refused[f"api-{side + 1}: {type(exc).__name__}"] += 1
                return
        if answer.status_code == 201:
            run.ids[tag] = answer.json()["id"]
        else:
            run.refused[f"api-{side + 1}: {answer.status_code} {answer.text[:200]}"] += 1

    await asyncio.gather(*(one(i) for i in range(run.count)))
    run.submitted = True
    run.say(f"{len(run.ids)} of {run.count} creates answered 201 across both API processes")
    for why, n in run.refused.items():
        run.say(f"  {n} not accepted: {why}")


async def until_done(run: Run, fraction: float, *, submitted: bool, stall_s: float) -> None:
    """Until `fraction` of the predictions finished (and, if `submitted`, every create was
    answered); fails when no prediction finishes for `stall_s`."""
    last, last_change = -1, time.monotonic()
    while True:
        finished = run.read_runs()
        if finished >= fraction * run.count and (run.submitted or not submitted):
            return
        if finished != last:
            last, last_change = finished, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            raise SystemExit(f"cluster_demo: no prediction finished for {stall_s:g} s")
        await asyncio.sleep(0.05)


def kill_worker_node(run: Run) -> None:
    subprocess.run(
        [str(ROOT / "scripts" / "ray-cluster.sh"), "kill", str(run.dir / "ray"), "worker"],
        check=True,
        capture_output=True,
    )


def kill_api(api: Api) -> None:
    """SIGKILL the API process's group, and wait until nothing of its session lives."""
    os.killpg(api.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while session_alive(api.pid):
        if time.monotonic() > deadline:
            raise SystemExit(f"cluster_demo: API process {api.pid} outlived SIGKILL for 30 s")
        time.sleep(0.05)


def session_alive(sid: int) -> bool:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                text = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            fields = text[text.rfind(")") + 2 :].split()
            if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
                return True
    return False


async def settle(run: Run, client: httpx.AsyncClient, deadline: float) -> dict[str, Any]:
    """Every accepted prediction as the surviving API process reads it, polled until each is
    terminal or `deadline` (monotonic) passes."""
    records: dict[str, Any] = {}
    gate = asyncio.Semaphore(CONCURRENCY)
    said = 0.0

    async def read(prediction_id: str) -> None:
        async with gate:
            try:
                answer = await client.get(f"/v1/predictions/{prediction_id}")
            except httpx.HTTPError:
                return  # asked again next round
        if answer.status_code == 200:
            records[prediction_id] = answer.json()

    while True:
        open_ids = [i for i in run.ids.values() if records.get(i, {}).get("status") not in TERMINAL]
        if not open_ids or time.monotonic() > deadline:
            return records
        await asyncio.gather(*(read(i) for i in open_ids))
        if time.monotonic() - said >= 5:
            said = time.monotonic()
            ended = sum(r["status"] in TERMINAL for r in records.values())
            run.say(f"api-2 reads {ended} of {len(run.ids)} accepted predictions as terminal")
        await asyncio.sleep(0.5)


async def demo(run: Run) -> int:
    ms = tuple(int(x) for x in os.environ.get("DEMO_MS", "50-200").split("-", 1))
    assert len(ms) == 2, "DEMO_MS is LOW-HIGH milliseconds, e.g. 50-200"
    lease_s = setting("FORETELL_LEASE_S", 15.0)
    stall_s = setting("DEMO_STALL_S", 60.0)
    a, b = run.apis
    headers = {"Authorization": f"Bearer {run.key}"}
    limits = httpx.Limits(max_connections=CONCURRENCY)
    clients = [
        httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30.0, limits=limits)
        for api in run.apis
    ]
    try:
        replicas = await wait_replicas(run, clients, stall_s)
        per_node = collections.Counter(replicas.values())
        run.say(
            f"API processes {a.url} (pid {a.pid}) and {b.url} (pid {b.pid}); replicas of "
            f"{MODEL}: " + ", ".join(f"{per_node[n]} on the {n} {ip}" for n, ip in NODES.items())
        )
        run.say(f"submitting {run.count} predictions ({ms[0]}-{ms[1]} ms each), alternating")
        submitting = asyncio.create_task(submit(run, clients, ms))

        await until_done(run, setting("DEMO_KILL_NODE_AT", 0.2), submitted=False, stall_s=stall_s)
        on_worker = sum(n for pid, n in run.done_pids.items() if replicas.get(pid) == "worker")
        kill_worker_node(run)
        run.say(
            f"SIGKILLed the Ray worker node {NODES['worker']} ({len(run.done)} done so far, "
            f"{on_worker} of them there)"
        )

        await until_done(run, setting("DEMO_KILL_API_AT", 0.45), submitted=True, stall_s=stall_s)
        await submitting
        kill_api(a)
        killed_at = time.monotonic()
        run.say(
            f"SIGKILLed API process 1 ({a.url}, process group {a.pid}) with {len(run.done)} "
            f"done; its unfinished work waits for its lease ({lease_s:g} s) to expire"
        )

        deadline = killed_at + lease_s + setting("DEMO_DEADLINE_S", 120.0)
        records = await settle(run, clients[1], deadline)
    finally:
        for client in clients:
            await client.aclose()
    run.read_runs()
    return report(run, records)


def report(run: Run, records: dict[str, Any]) -> int:
    ended = [r for r in records.values() if r["status"] in TERMINAL]
    outcomes = collections.Counter(
        r["status"] if r["status"] != "failed" else f"failed as {r['error']['source']}"
        for r in ended
    )
    failures = collections.Counter(
        (r["error"]["source"], r["error"]["message"][:140])
        for r in ended
        if r["status"] == "failed"
    )
    for (source, message), n in failures.most_common():
        run.say(f"  {n} failed{'' if source == 'internal' else ' as ' + source}: {message}")
    by_id = {prediction_id: tag for tag, prediction_id in run.ids.items()}
    unfinished = [i for i in run.ids.values() if i not in {r["id"] for r in ended}]
    for prediction_id in unfinished[:10]:
        status = records.get(prediction_id, {}).get("status", "not found")
        run.say(f"  not terminal: {prediction_id} ({by_id[prediction_id]}): {status}")
    twice = [tag for tag in run.ids if run.done[tag] >= 2]
    for tag in twice[:10]:
        run.say(f"  ran to completion {run.done[tag]} times: {run.ids[tag]} ({tag})")
    no_run = [r["id"] for r in ended if r["status"] == "succeeded" and not run.done[by_id[r["id"]]]]
    if no_run:
        run.say(f"  {len(no_run)} succeeded without a completion in runs.log, e.g. {no_run[0]}")
    # A model run that finished after its API process died: its outcome was never recorded.
    unrecorded = [r for r in ended if r["status"] != "succeeded" and run.done[by_id[r["id"]]]]
    if unrecorded:
        run.say(
            f"  {len(unrecorded)} ran to completion in the model, yet ended "
            f"{unrecorded[0]['status']} (their outcome was never recorded), e.g. "
            f"{unrecorded[0]['id']}"
        )

    accepted, terminal = len(run.ids), len(ended)
    succeeded, failed_internal = outcomes["succeeded"], outcomes["failed as internal"]
    others = {k: n for k, n in outcomes.items() if k not in ("succeeded", "failed as internal")}
    extra = "".join(f", {n} {k}" for k, n in sorted(others.items()))
    print(
        f"{accepted} accepted, {terminal} terminal ({succeeded} succeeded, {failed_internal} "
        f"failed as internal{extra}), {accepted - terminal} lost, {len(twice)} run twice to "
        "completion",
        flush=True,
    )
    good = accepted == run.count and terminal == accepted and not twice and not others
    return 0 if good and not no_run else 1


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: cluster_demo.py DIR (the folder of scripts/cluster.sh up)")
    folder = Path(sys.argv[1]).resolve()
    apis, key = read_cluster(folder)
    run = Run(folder, apis, key, int(setting("DEMO_COUNT", 500)))
    sys.exit(asyncio.run(demo(run)))


if __name__ == "__main__":
    main()
