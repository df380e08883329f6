"""Idle RSS of `make run`: `foretell serve examples/models` with make run's flags, measured once
every model has settled (GET /health/ready 200, then no process started or stopped for a while),
summed over the server and every descendant (bench/harness/procs.rss_bytes, as compare.py does).

    .venv/bin/python bench/idle_rss.py [--src DIR] [--repository DIR] [--quiet-s 5] [--each]

`--src` runs another tree's code (PYTHONPATH=DIR), e.g. /tmp/base/src, with that tree's
examples unless `--repository` says otherwise. The server's whole session is killed afterwards.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from harness.procs import free_port, process_tree, rss_bytes

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 300.0
MAKE_RUN_FLAGS = (
    "--default-model",
    "demo/sentiment",
    "--default-model",
    "demo/sentiment-text",
    "--default-model",
    "demo/digits-image",
    "--anonymous-public",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--repository", type=Path)
    parser.add_argument("--quiet-s", type=float, default=5.0, help="no process change this long")
    parser.add_argument("--each", action="store_true", help="each process's RSS and command")
    args = parser.parse_args()
    repository = args.repository or args.src.parent / "examples" / "models"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="idle-rss-") as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORETELL_")}
        env["PYTHONPATH"] = str(args.src)
        command = [sys.executable, "-m", "foretell.cli.main", "serve", str(repository)]
        command += ["--port", str(port), "--grpc-port", str(free_port()), "--data-dir", data]
        command += MAKE_RUN_FLAGS
        log = open(Path(data) / "server.log", "wb")  # noqa: SIM115 - closed with the server
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            started = time.monotonic()
            _wait_ready(server, port)
            ready_s = time.monotonic() - started
            processes = _wait_quiet(server.pid, args.quiet_s)
            total = rss_bytes(server.pid)
            each = [_one(pid) for pid in processes] if args.each else []
        finally:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            log.close()
    for line in each:
        print(line)
    print(
        f"{args.src}: idle RSS {total / 1e6:,.0f} MB in {len(processes)} processes "
        f"(ready after {ready_s:.1f} s, then {args.quiet_s:g} s without a process change)"
    )


def _one(pid: int) -> str:
    """`RSS MB  command line` of one process (its own RSS, not its children's)."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    kb = next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return f"{kb * 1024 / 1e6:7,.0f} MB  {' '.join(a.decode() for a in argv[-3:])}"


def _wait_ready(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"the server exited with {server.returncode}")
            try:
                if client.get("/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise SystemExit(f"not ready after {READY_TIMEOUT_S:g} s")


def _wait_quiet(root: int, quiet_s: float) -> list[int]:
    """The process tree once it has not changed for `quiet_s` (a min-0 model's first replica
    stops after it loaded)."""
    seen, since = sorted(process_tree(root)), time.monotonic()
    while time.monotonic() - since < quiet_s:
        time.sleep(0.2)
        now = sorted(process_tree(root))
        if now != seen:
            seen, since = now, time.monotonic()
    return seen


if __name__ == "__main__":
    main()
