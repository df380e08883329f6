"""Cold start: seconds from spawning `foretell serve examples/models` to its first correct
demo/digits prediction, this tree against another src/ (`--against`), alternating.

    .venv/bin/python bench/cold_start.py [--runs 5] [--against /tmp/base/src] [--src DIR]
                                         [--repository DIR]

Each run gets a fresh data directory, made (untimed) by `foretell keys create` as compare.py
does, so the server finds its database at head; then it polls `POST /v1/predictions` with that
key (`Prefer: wait=10`) every 10 ms until the record says succeeded with the digit the image
shows. The server's whole process group is killed afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# sklearn's load_digits().data[0], a zero: the same row bench/compare.py sends.
ZERO = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4]
ZERO += [12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10]
ZERO += [12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
BODY = {"model": "demo/digits", "input": {"features": [ZERO]}}
POLL_S = 0.01


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _good(response: httpx.Response) -> bool:
    if response.status_code not in (200, 201):
        return False
    record = response.json()
    return record.get("status") == "succeeded" and record["output"]["label"] == [0]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cold_start(src: Path | None, repository: Path, timeout_s: float = 60.0) -> tuple[float, float]:
    """One spawn → first correct prediction: (wall seconds, the server process's CPU seconds,
    its replicas' not counted); `src` goes first on PYTHONPATH."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    port = _free_port()
    with tempfile.TemporaryDirectory() as data:
        # The tree's `foretell` command: its entry module where it has one (cli/entry.py), as
        # the console script runs it.
        entry = src is not None and (src / "foretell" / "cli" / "entry.py").is_file()
        cli = [sys.executable, "-m", "foretell.cli" if entry else "foretell.cli.main"]
        create = [*cli, "keys", "create", "--owner", "demo", "--scope", "predict"]
        made = subprocess.run(
            [*create, "--data-dir", data], env=env, capture_output=True, text=True, check=True
        )
        command = [*cli, "serve", str(repository), "--port", str(port), "--data-dir", data]
        url = f"http://127.0.0.1:{port}/v1/predictions"
        headers = {"Prefer": "wait=10", "Authorization": f"Bearer {made.stdout.strip()}"}
        started = time.perf_counter()
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            with httpx.Client(timeout=15) as client:
                while time.perf_counter() - started < timeout_s:
                    if proc.poll() is not None:
                        raise SystemExit(f"the server exited {proc.returncode} while starting")
                    with contextlib.suppress(httpx.HTTPError):
                        if _good(client.post(url, json=BODY, headers=headers)):
                            return time.perf_counter() - started, _cpu_s(proc.pid)
                    time.sleep(POLL_S)
            raise SystemExit(f"no correct prediction within {timeout_s:g} s")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another tree's src/ to compare with")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="default: this tree's")
    parser.add_argument("--repository", type=Path, default=ROOT / "examples" / "models")
    args = parser.parse_args()
    trees: list[tuple[str, Path | None]] = [(str(args.src), args.src)]
    if args.against is not None:
        trees.append((str(args.against), args.against))
    times: dict[str, list[float]] = {name: [] for name, _ in trees}
    cpu: dict[str, list[float]] = {name: [] for name, _ in trees}
    for run in range(args.runs):
        # Alternate the order too, so neither tree always runs on a machine the other warmed.
        for name, src in trees if run % 2 == 0 else trees[::-1]:
            seconds, cpu_s = cold_start(src, args.repository)
            times[name].append(seconds)
            cpu[name].append(cpu_s)
            print(f"run {run + 1} {name}: {seconds:.3f} s, server CPU {cpu_s:.2f} s", flush=True)
    for name, _ in trees:
        wall, used = times[name], cpu[name]
        print(
            f"{name}: median {statistics.median(wall):.3f} s, min {min(wall):.3f} s; "
            f"server CPU median {statistics.median(used):.2f} s"
        )
    if args.against is not None:
        for label, values in (("wall", times), ("server CPU", cpu)):
            ours, theirs = (statistics.median(values[name]) for name, _ in trees)
            print(f"ratio this/against, {label} (medians): {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
