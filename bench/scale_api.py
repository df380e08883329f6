"""The recorded native route with 1 API process against 2 on one PostgreSQL, and where the CPU goes.

    .venv/bin/python bench/scale_api.py [--duration 10] [--connections 64] [--py-spy]

Each case is `foretell serve --workers N --db postgresql://…` on a fresh database of a throwaway
PostgreSQL (scripts/postgres.sh), serving demo/digits only. wrk (one thread, C connections) POSTs
`{"model": "demo/digits", "input": {"features": [[64 pixels]]}}` to /v1/predictions with
`Prefer: wait=10`: each 201 carries a record committed to PostgreSQL. After a 3 s warm-up it runs
--duration seconds while this script reads the CPU time of every process and thread involved
(/proc/PID/task/TID/stat): the API workers by thread (event loop, writer, readers), the replica
processes, PostgreSQL's backends, wrk. With --py-spy (pip install py-spy) it also samples one API
worker's Python stacks for the measured seconds of the 2-process case and lists the functions
where most samples were. Prints each case, the ratio and the CPU table, and appends a section to
bench/RESULTS-scale.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from harness.models import digits_model
from harness.wrk import WrkResult, lua_script, parse

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = ROOT / "scripts" / "postgres.sh"
RESULTS = ROOT / "bench" / "RESULTS-scale.md"
VENV_BIN = Path(sys.executable).parent
HZ = os.sysconf("SC_CLK_TCK")
WARMUP_S = 3.0


@dataclass
class Case:
    workers: int
    result: WrkResult
    cpu: dict[str, float]  # role -> CPU seconds during the measured run
    measured_s: float
    stacks: list[tuple[str, float]]  # (function, share of samples), with --py-spy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def postgres() -> Iterator[tuple[str, int]]:
    """A throwaway PostgreSQL server: its URL and its postmaster's pid; stopped (by its own
    PID) on leaving."""
    folder = Path(tempfile.mkdtemp(prefix="foretell-bench-pg-"))
    try:
        url = subprocess.run(
            [POSTGRES, "start", folder], check=True, capture_output=True, text=True, timeout=120
        ).stdout.strip()
        (pid_file,) = folder.rglob("postmaster.pid")
        yield url, int(pid_file.read_text().split()[0])
    finally:
        subprocess.run([POSTGRES, "stop", folder], capture_output=True, timeout=90)
        shutil.rmtree(folder, ignore_errors=True)


def new_database(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def repository(root: Path) -> Path:
    repo = root / "repo" / "demo"
    repo.mkdir(parents=True)
    (repo / "digits").symlink_to(ROOT / "examples" / "models" / "demo" / "digits")
    return repo.parent


@contextlib.contextmanager
def serving(repo: Path, data_dir: Path, db: str, workers: int) -> Iterator[tuple[str, int, str]]:
    """`foretell serve --workers N` until ready: (its URL, its pid, a predict key)."""
    exe = str(VENV_BIN / "foretell")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORETELL_")}
    env["FORETELL_DB"] = db
    key = subprocess.run(
        [exe, "keys", "create", "--owner", "demo", "--scope", "predict", "--data-dir", data_dir],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    port = free_port()
    log = open(data_dir / f"serve-{workers}.log", "wb")  # noqa: SIM115 (closed below)
    command = [exe, "serve", repo, "--port", str(port), "--data-dir", data_dir]
    process = subprocess.Popen(
        [*command, "--workers", str(workers)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"foretell did not start: see {log.name}")
            time.sleep(0.2)
        # Each worker answers readiness once its own replica loaded: ask until all have.
        time.sleep(3)
        yield url, process.pid, key
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
        log.close()


def session_pids(sid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{entry.name}/stat").read_text()
                if int(text[text.rfind(")") + 2 :].split()[3]) == sid:
                    found.append(int(entry.name))
    return found


def _stat(path: str) -> tuple[str, float] | None:
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rfind(")")]
    fields = text[text.rfind(")") + 2 :].split()
    return comm, (int(fields[11]) + int(fields[12])) / HZ  # utime + stime


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


Snapshot = dict[tuple[str, int], float]  # (role or "api", pid or tid) -> CPU seconds so far
_THREAD = re.compile(r'^Thread (\d+) \(\w+\): "(.*)"$', re.MULTILINE)


def cpu_snapshot(server_sid: int, wrk_pid: int, postmaster: int) -> Snapshot:
    """CPU seconds so far: each API worker thread (by tid), the replica processes, the
    supervisor, this run's PostgreSQL processes and wrk."""
    found: Snapshot = {}
    for pid in session_pids(server_sid):
        command = _cmdline(pid)
        if "foretell.workers" in command:
            found[("replica processes", pid)] = _cpu(f"/proc/{pid}/stat")
        elif "spawn_main" in command or (pid == server_sid and "--workers 1" in command):
            for tid in os.listdir(f"/proc/{pid}/task"):
                found[("api", int(tid))] = _cpu(f"/proc/{pid}/task/{tid}/stat")
        elif pid == server_sid:
            found[("supervisor", pid)] = _cpu(f"/proc/{pid}/stat")
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        if pid in (wrk_pid, postmaster) or _ppid(pid) == postmaster:
            # Only this run's server: other PostgreSQL servers on this machine are not counted.
            found[("wrk" if pid == wrk_pid else "PostgreSQL", pid)] = _cpu(f"/proc/{pid}/stat")
    return found


def _cpu(path: str) -> float:
    stat = _stat(path)
    return stat[1] if stat else 0.0


def thread_names(pids: list[int]) -> dict[int, str]:
    """Each API worker thread's Python name by its tid (from py-spy dump), where py-spy is
    installed; threads Python did not start (libuv's) are named by the kernel."""
    names: dict[int, str] = {}
    spy = VENV_BIN / "py-spy"
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            stat = _stat(f"/proc/{pid}/task/{tid}/stat")
            names[int(tid)] = stat[0] if stat else "?"
        if spy.exists():
            dump = subprocess.run(
                [str(spy), "dump", "--pid", str(pid), "--nonblocking"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
            names |= {int(tid): name for tid, name in _THREAD.findall(dump)}
    return names


def _role(name: str) -> str:
    kinds = {
        "MainThread": "event loop",
        "foretell-writer": "writer thread",
        "foretell-reader": "reader threads",
        "libuv-worker": "libuv's threads",
    }
    for prefix, role in kinds.items():
        if name.startswith(prefix):
            return f"API: {role}"
    return "API: other threads"


def by_role(before: Snapshot, after: Snapshot, names: dict[int, str]) -> dict[str, float]:
    roles: dict[str, float] = defaultdict(float)
    for (kind, key), seconds in after.items():
        role = _role(names.get(key, "?")) if kind == "api" else kind
        roles[role] += seconds - before.get((kind, key), 0.0)
    return dict(roles)


def _ppid(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        text = Path(f"/proc/{pid}/stat").read_text()
        return int(text[text.rfind(")") + 2 :].split()[1])
    return None


def api_pids(server_sid: int) -> list[int]:
    pids = [p for p in session_pids(server_sid) if "spawn_main" in _cmdline(p)]
    return pids or [server_sid]


def run_case(
    repo: Path, root: Path, pg: tuple[str, int], workers: int, args: argparse.Namespace
) -> Case:
    data_dir = root / f"data-{workers}"
    data_dir.mkdir()
    server_url, postmaster = pg
    db = new_database(server_url, f"bench_{workers}")
    model = digits_model()
    body = (
        '{"model": "demo/digits", "input": {"features": [['
        + ", ".join(str(x) for x in model.row)
        + "]]}}"
    ).encode()
    with serving(repo, data_dir, db, workers) as (url, sid, key):
        headers = {"Prefer": "wait=10", "Authorization": f"Bearer {key}"}
        script = root / f"post-{workers}.lua"
        script.write_text(lua_script(body, headers, '"status":"succeeded"'))
        target = f"{url}/v1/predictions"
        wrk = ["wrk", "-t1", f"-c{args.connections}", "--latency", "--timeout", "10s", "-s"]
        subprocess.run([*wrk, str(script), "-d", f"{WARMUP_S:g}s", target], capture_output=True)
        process = subprocess.Popen(
            [*wrk, str(script), "-d", f"{args.duration:g}s", target],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)
        before, started = cpu_snapshot(sid, process.pid, postmaster), time.monotonic()
        spy = None
        if args.py_spy and workers > 1 and (pids := api_pids(sid)):
            spy_out = root / "py-spy.txt"
            spy = subprocess.Popen(
                [
                    str(VENV_BIN / "py-spy"),
                    "record",
                    "-p",
                    str(pids[0]),
                    "-r",
                    "200",
                    "-d",
                    f"{max(1, int(args.duration - 2))}",
                    "--format",
                    "raw",
                    "-o",
                    str(spy_out),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        time.sleep(args.duration - 1.5)
        after, ended = cpu_snapshot(sid, process.pid, postmaster), time.monotonic()
        output, _ = process.communicate()
        names = thread_names(api_pids(sid))
        stacks = []
        if spy is not None:
            spy.wait(30)
            stacks = top_functions(root / "py-spy.txt")
    cpu = by_role(before, after, names)
    return Case(workers, parse(output, args.connections), cpu, ended - started, stacks)


def top_functions(raw: Path, n: int = 12) -> list[tuple[str, float]]:
    """The functions with the most samples at the top of the stack ("self" time) in py-spy's
    collapsed output, each with its share of all samples."""
    if not raw.exists():
        return []
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1] if frames else "?"
        own[leaf] += int(count)
        total += int(count)
    return [(name, samples / total) for name, samples in own.most_common(n)] if total else []


def report(cases: list[Case], args: argparse.Namespace) -> str:
    one, two = cases
    ratio = two.result.rps / one.result.rps
    load = os.getloadavg()[0]
    lines = [
        "",
        "# 1 API process against 2 on one PostgreSQL: the recorded native route "
        "(bench/scale_api.py)",
        "",
        f"`python bench/scale_api.py --duration {args.duration:g} --connections "
        f"{args.connections}{' --py-spy' if args.py_spy else ''}` — "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores, "
        f"load average {load:.1f} at the end. `foretell serve --workers N` on PostgreSQL "
        "(scripts/postgres.sh, same machine), demo/digits, `POST /v1/predictions` with "
        "`Prefer: wait=10` (each answer a committed record), wrk 1 thread.",
        "",
        "| API processes | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for case in cases:
        r = case.result
        lines.append(
            f"| {case.workers} | {r.rps:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
            f"{r.error_text() or 0} |"
        )
    lines += ["", f"**Ratio 2 / 1: {ratio:.2f}x.**", "", "CPU used while measured (cores):", ""]
    roles = sorted(
        {role for case in cases for role in case.cpu}, key=lambda r: (r[:4] != "API:", r)
    )
    lines += ["| where | 1 process | 2 processes |", "|---|---|---|"]
    for role in roles:
        shares = [case.cpu.get(role, 0.0) / case.measured_s for case in cases]
        lines.append(f"| {role} | {shares[0]:.2f} | {shares[1]:.2f} |")
    totals = [sum(case.cpu.values()) / case.measured_s for case in cases]
    lines.append(f"| **all of it** | {totals[0]:.2f} | {totals[1]:.2f} |")
    per_request = [
        1e6
        * sum(v for k, v in case.cpu.items() if k.startswith("API:"))
        / case.measured_s
        / case.result.rps
        for case in cases
    ]
    lines += [
        "",
        f"API process CPU per request: {per_request[0]:.0f} us (1 process), "
        f"{per_request[1]:.0f} us (2).",
    ]
    if two.stacks:
        lines += [
            "",
            "py-spy --gil, one of the 2 API processes: what held its GIL (own time, share of "
            "samples):",
            "",
        ]
        lines += [f"- {share:.0%} {name}" for name, share in two.stacks]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--py-spy", action="store_true", help="sample one API worker's stacks")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("needs wrk (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="foretell-scale-api-") as scratch, postgres() as pg:
        root = Path(scratch)
        repo = repository(root)
        cases = [run_case(repo, root, pg, workers, args) for workers in (1, 2)]
    text = report(cases, args)
    print(text)
    if not args.no_write:
        with RESULTS.open("a", encoding="utf-8") as results:
            results.write(text)


if __name__ == "__main__":
    main()
