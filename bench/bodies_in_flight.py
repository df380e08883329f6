"""Peak server memory under many large request bodies at once, this tree beside another.

    .venv/bin/python bench/bodies_in_flight.py [--against /tmp/base/src] [--bodies 100] [--mb 10]

Starts `foretell serve` (an empty model repository, no auth, a fresh data dir) from this tree's
src/ and, with --against, from another src/ (e.g. the code before max_body_bytes_in_flight), one
at a time. Each gets `--bodies` concurrent POST /v1/predictions of `--mb` MB (a JSON string
input for a model that does not exist: each is read whole, parsed, then answered 404, or refused
first with 503 past the cap), over that many connections. Reported per server: the answers by
status (`sent whole, no answer`: the server answered and closed before the body was all sent),
RSS before the load and the server's peak RSS (VmHWM), and the ratio of the two peaks.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def body(mb: int) -> bytes:
    head, tail = b'{"model": "nobody/nothing", "input": {"text": "', b'"}}'
    return head + b"x" * (mb * 1024 * 1024 - len(head) - len(tail) - 64) + tail


async def load(port: int, bodies: int, payload: bytes) -> collections.Counter[str]:
    limits = httpx.Limits(max_connections=bodies, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=300
    ) as http:

        async def one() -> str:
            try:
                response = await http.post("/v1/predictions", content=payload)
            except httpx.HTTPError as exc:
                return f"sent whole, no answer ({type(exc).__name__})"
            return str(response.status_code)

        return collections.Counter(await asyncio.gather(*(one() for _ in range(bodies))))


def measure(src: Path, bodies: int, mb: int) -> tuple[collections.Counter[str], int, int]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "models").mkdir()
        log = open(Path(tmp) / "server.log", "w")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "foretell",
                "serve",
                str(Path(tmp) / "models"),
                "--port",
                str(port),
                "--data-dir",
                str(Path(tmp) / "data"),
                "--no-auth",
            ],
            env={**os.environ, "PYTHONPATH": str(src)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{src}: server did not start; see {log.name}")
                time.sleep(0.1)
            before = memory_kb(server.pid, "VmRSS")
            answers = asyncio.run(load(port, bodies, body(mb)))
            peak = memory_kb(server.pid, "VmHWM")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
    return answers, before, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another src/ to measure the same way")
    parser.add_argument("--bodies", type=int, default=100)
    parser.add_argument("--mb", type=int, default=10)
    args = parser.parse_args()
    runs = [("this tree", ROOT / "src")]
    if args.against:
        runs.append((str(args.against), args.against))
    peaks = {}
    print(f"{args.bodies} concurrent POSTs of {args.mb} MB each")
    print("| server | answers | RSS before | peak RSS |\n| --- | --- | ---: | ---: |")
    for name, src in runs:
        answers, before, peak = measure(src, args.bodies, args.mb)
        peaks[name] = peak
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(answers.items()))
        print(f"| {name} | {shown} | {before / 1024:.0f} MB | {peak / 1024:.0f} MB |")
    if len(peaks) == 2:
        ours, theirs = peaks["this tree"], peaks[str(args.against)]
        print(f"\npeak RSS, this tree / {args.against}: {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
