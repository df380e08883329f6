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
        await _records(store, range(-500, 0), PredictionStatus, [])
        await store.flush()
        commits = store.commits
        cpu0, wall0 = _thread_cpu_ns("foretell-writer_0"), time.perf_counter()
        waits: list[float] = []
        await _records(store, range(n), PredictionStatus, waits)
        waits.sort()
        await store.flush()
        cpu = _thread_cpu_ns("foretell-writer_0") - cpu0
        wall = time.perf_counter() - wall0
        return {
            "us_per_record": cpu / n / 1000,
            "records_per_s": n / wall,
            "records_per_commit": n / max(1, store.commits - commits),
            "write_p50_ms": waits[len(waits) // 2] * 1000,
            "write_p99_ms": waits[len(waits) * 99 // 100] * 1000,
            "write_max_ms": waits[-1] * 1000,
        }
    finally:
        await store.close()


async def _records(store: object, indexes: range, status: object, waits: list[float]) -> None:
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
            start = time.perf_counter()
            await store.write(p, new=False)  # type: ignore[attr-defined]
            waits.append(time.perf_counter() - start)

    await asyncio.gather(*(one(i) for i in indexes))


def _digits_input() -> str:
    import orjson

    return orjson.dumps({"image": [random.random() * 16 for _ in range(64)]}).decode()


def _floor(path: str, n: int, batch: int = 25) -> dict[str, float]:
    """The driver alone: the same inserts and narrow updates of digits records through sqlite3,
    `batch` records a transaction, on the store's schema: what SQLite itself costs."""
    import sqlite3

    import orjson

    from foretell.store.engine import create_engine, migrate

    engine = create_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("synchronous=NORMAL", "journal_mode=WAL", "wal_autocheckpoint=0"):
        conn.execute(f"PRAGMA {pragma}")
    names = "id owner name version_number status input created_at updated_at deadline_at logs"
    inserted = [*names.split(), "attempts", "created_by", "claimed_by"]
    insert = (
        f"INSERT INTO predictions ({', '.join(inserted)}, lease_until) VALUES "
        f"({', '.join('?' * len(inserted))}, strftime('%Y-%m-%d %H:%M:%f', 'now', '15.0 seconds'))"
    )
    changed = "status output updated_at started_at completed_at execution_time claimed_by"
    update = (
        f"UPDATE predictions SET {', '.join(f'{c} = ?' for c in changed.split())}, "
        "lease_until = NULL WHERE id = ? AND claimed_by = ?"
    )

    def now() -> str:
        return datetime.now(UTC).isoformat(" ", "microseconds")[:26]

    ids = [str(uuid.uuid4()) for _ in range(n)]
    t = now()
    # Made before the clock starts: the store makes them on the event loop's thread.
    rows = [
        (id, "demo", "digits", 1, "pending", _digits_input(), t, t, t, "", 0, "b", "i")
        for id in ids
    ]
    outputs = [orjson.dumps([random.random() for _ in range(10)]).decode() for _ in ids]
    ends = [
        ("succeeded", output, t, t, t, 5e-5, None, id, "i")
        for id, output in zip(ids, outputs, strict=True)
    ]
    cpu0 = time.thread_time()
    for start in range(0, n + batch, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows[start : start + batch])
        for end in ends[max(0, start - batch) : start]:
            conn.execute(update, end)
        conn.execute("COMMIT")
    cpu = time.thread_time() - cpu0
    conn.close()
    return {"us_per_record": cpu / n * 1e6, "records_per_s": 0.0, "records_per_commit": batch}


def _child(url: str, n: int) -> None:
    if url.startswith("floor:"):
        print(json.dumps(_floor(url.removeprefix("floor:"), n)))
        return
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
    parser.add_argument("--new", type=Path, default=ROOT / "src", help="the src/ called new")
    parser.add_argument("--postgres", help="a server URL (its user may CREATE DATABASE)")
    parser.add_argument(
        "--stores",
        default="sqlite,postgresql",
        help="any of sqlite, postgresql, floor (SQLite through sqlite3 alone, no store)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.n)
        return
    trees = {"new": args.new}
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
                        elif store == "floor":
                            url = f"floor:{tmp}/{name}.db"
                        else:
                            assert server is not None
                            url = _fresh_pg(server, name)
                        result = _measure(src, url, args.n)
                        results.setdefault((store, tree), []).append(result)
                        print(
                            f"round {round_} {store:10} {tree}: "
                            f"{result['us_per_record']:6.1f} us/record (writer thread CPU), "
                            f"{result['records_per_s']:7.0f} records/s, "
                            f"{result['records_per_commit']:5.1f} records/commit, "
                            f"awaited write p50 {result.get('write_p50_ms', 0):.1f} "
                            f"p99 {result.get('write_p99_ms', 0):.1f} "
                            f"max {result.get('write_max_ms', 0):.1f} ms",
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
        p99 = _median([r.get("write_p99_ms", 0.0) for r in runs])
        worst = _median([r.get("write_max_ms", 0.0) for r in runs])
        print(
            f"  {store:10} {tree}: {us:6.1f} us/record {per_row}, {rate:6.0f} records/s, "
            f"awaited write p99 {p99:.1f} ms, max {worst:.1f} ms"
        )
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
