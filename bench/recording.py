"""Recording: CPU of the store's writer thread per prediction record, on SQLite and PostgreSQL.

Writes N digits-sized records (64 input floats, 10 output probabilities) through
PredictionStore as the native route's waiting caller does: `insert_soon` of the pending record
when it is created, then the awaited `write` of the succeeded one, CONCURRENCY of them in flight
(so writes share group commits, as under load). Prints, per store, the writer thread's CPU per
record (from /proc, the thread named foretell-writer_0), records/s and rows per commit.

Old against new: run it once on this tree and once on another (a git worktree of the commit
before), alternating, e.g.

    .venv/bin/python bench/recording.py --rounds 3 --compare /tmp/base/src

`--compare SRC` runs each round twice in subprocesses, once with PYTHONPATH=SRC and once with
this tree's src, and prints both. PostgreSQL is a throwaway server from scripts/postgres.sh
(or --postgres URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 64


def _thread_cpu_ns(name: str) -> int:
    for thread in threading.enumerate():
        if thread.name == name and thread.native_id is not None:
            stat = Path(f"/proc/self/task/{thread.native_id}/schedstat").read_text()
            return int(stat.split()[0])
    raise LookupError(f"no thread {name}")


def _prediction(index: int) -> object:
    from foretell.domain import Prediction, PredictionStatus

    now = datetime.now(UTC)
    return Prediction(
        id=str(uuid.uuid4()),  # as the service makes them: the id index takes them anywhere
        owner="demo",
        name="digits",
        version_number=1,
        status=PredictionStatus.PENDING,
        input={"image": [random.random() * 16 for _ in range(64)]},
        created_at=now,
        updated_at=now,
        deadline_at=now + timedelta(seconds=60),
        created_by="bench",
    )


async def _run(url: str, n: int) -> dict[str, float]:
    from foretell.domain import PredictionStatus
    from foretell.store import PredictionStore

    store = await PredictionStore.open(url)
    try:
        # Warm up: the connection, statement caches, the first checkpoint.
        await _records(store, range(-500, 0), PredictionStatus)
        await store.flush()
        commits = store.commits
        cpu0, wall0 = _thread_cpu_ns("foretell-writer_0"), time.perf_counter()
        await _records(store, range(n), PredictionStatus)
        await store.flush()
        cpu = _thread_cpu_ns("foretell-writer_0") - cpu0
        wall = time.perf_counter() - wall0
        return {
            "us_per_record": cpu / n / 1000,
            "records_per_s": n / wall,
            "records_per_commit": n / max(1, store.commits - commits),
        }
    finally:
        await store.close()


async def _records(store: object, indexes: range, status: object) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> None:
        async with gate:
            p = _prediction(index)
            store.insert_soon(p)  # type: ignore[attr-defined]
            await asyncio.sleep(0.002)  # batching and the model: the insert commits first
            now = datetime.now(UTC)
            p.status = status.SUCCEEDED  # type: ignore[attr-defined]
            p.started_at = p.completed_at = p.updated_at = now  # type: ignore[attr-defined]
            p.output = [random.random() for _ in range(10)]  # type: ignore[attr-defined]
            p.execution_time = timedelta(microseconds=50)  # type: ignore[attr-defined]
            await store.write(p, new=False)  # type: ignore[attr-defined]

    await asyncio.gather(*(one(i) for i in indexes))


def _child(url: str, n: int) -> None:
    print(json.dumps(asyncio.run(_run(url, n))))


def _measure(src: Path, url: str, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, "-n", str(n)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _postgres() -> tuple[str, Path]:
    folder = Path(tempfile.mkdtemp(prefix="foretell-bench-pg-"))
    folder.chmod(0o755)
    script = ROOT / "scripts" / "postgres.sh"
    url = subprocess.run(
        [script, "start", folder], check=True, capture_output=True, text=True
    ).stdout.strip()
    return url, folder


def _fresh_pg(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="records per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", type=Path, help="another tree's src/ to run alternately")
    parser.add_argument("--postgres", help="a server URL (its user may CREATE DATABASE)")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.n)
        return
    trees = {"new": ROOT / "src"}
    if args.compare:
        trees = {"old": args.compare, **trees}
    stores = args.stores.split(",")
    folder = None
    server = args.postgres
    if "postgresql" in stores and server is None:
        server, folder = _postgres()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for round_ in range(args.rounds):
                for store in stores:
                    for tree, src in trees.items():
                        name = f"bench_recording_{tree}_{round_}"
                        if store == "sqlite":
                            url = f"sqlite:///{tmp}/{name}.db"
                        else:
                            assert server is not None
                            url = _fresh_pg(server, name)
                        result = _measure(src, url, args.n)
                        results.setdefault((store, tree), []).append(result)
                        print(
                            f"round {round_} {store:10} {tree}: "
                            f"{result['us_per_record']:6.1f} us/record (writer thread CPU), "
                            f"{result['records_per_s']:7.0f} records/s, "
                            f"{result['records_per_commit']:5.1f} records/commit",
                            flush=True,
                        )
    finally:
        if folder is not None:
            subprocess.run([ROOT / "scripts" / "postgres.sh", "stop", folder], check=False)
    print(f"\nmedian of {args.rounds} rounds, {args.n} records each (2 row writes a record):")
    for (store, tree), runs in results.items():
        us = _median([r["us_per_record"] for r in runs])
        rate = _median([r["records_per_s"] for r in runs])
        per_row = f"({us / 2:5.1f} us/row)"
        print(f"  {store:10} {tree}: {us:6.1f} us/record {per_row}, {rate:6.0f} records/s")
    if "old" in trees:
        for store in stores:
            pairs = zip(results[(store, "new")], results[(store, "old")], strict=True)
            ratios = [new["us_per_record"] / old["us_per_record"] for new, old in pairs]
            shown = ", ".join(f"{r:.2f}" for r in ratios)
            print(
                f"  {store:10} new/old CPU per record, each round: {shown}; "
                f"median {_median(ratios):.2f}"
            )


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


if __name__ == "__main__":
    main()
