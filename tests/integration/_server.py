"""Real `foretell serve` processes for integration tests: start, wait until ready, signal, reap.

Plain helpers, not fixtures: tests import them with `from _server import ...` (tests/integration
is on sys.path under pytest's default rootdir import mode, since it has no __init__.py).

Each server runs in its own session (start_new_session=True), so its pid is also its process
group and session id: signalling the group reaches the replica worker processes too, and a scan
of /proc by session id finds any process of it still alive.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from _readiness import READY_TIMEOUT_S, still_deploying

from foretell.auth.keys import ADMIN_KEY_FILE

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODELS = ROOT / "examples" / "models" / "demo"
FIXTURE_MODELS = ROOT / "tests" / "fixtures" / "models" / "fixtures"

EXIT_TIMEOUT_S = 30.0

T = TypeVar("T")


def build_repository(
    root: Path, *, demo: bool | Iterable[str] = True, fixtures: Iterable[str] | None = None
) -> Path:
    """A model repository under `root`: `demo -> examples/models/demo` and
    `fixtures -> tests/fixtures/models/fixtures`. With `fixtures` (or `demo`) a list of names,
    `fixtures/` (`demo/`) holds only those models (one symlink each), which keeps start-up short
    (every model starts replica processes before /health/ready answers 200); `fixtures=()` and
    `demo=False` leave them out."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    if demo is True:
        (repo / "demo").symlink_to(DEMO_MODELS, target_is_directory=True)
    elif demo is not False and (demos := list(demo)):
        (repo / "demo").mkdir()
        for name in demos:
            source = DEMO_MODELS / name
            assert source.is_dir(), f"no demo model {name!r} in {DEMO_MODELS}"
            (repo / "demo" / name).symlink_to(source, target_is_directory=True)
    if fixtures is None:
        (repo / "fixtures").symlink_to(FIXTURE_MODELS, target_is_directory=True)
    elif names := list(fixtures):
        (repo / "fixtures").mkdir()
        for name in names:
            source = FIXTURE_MODELS / name
            assert source.is_dir(), f"no fixture model {name!r} in {FIXTURE_MODELS}"
            (repo / "fixtures" / name).symlink_to(source, target_is_directory=True)
    return repo


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `check` until it returns something other than None/False; raise after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Server:
    """A started `foretell serve`: its URL, process and log file."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path
    _exit_code: int | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def admin_key(self) -> str:
        """The admin key the server made on its first start."""
        return (self.data_dir / ADMIN_KEY_FILE).read_text().strip()

    def client(self, **kwargs: Any) -> httpx.Client:
        """A sync httpx client on this server, as its first admin key; close it (use `with`)."""
        kwargs.setdefault("timeout", 30.0)
        kwargs.setdefault("headers", {"Authorization": f"Bearer {self.admin_key}"})
        return httpx.Client(base_url=self.url, **kwargs)


def session_processes(sid: int) -> list[int]:
    """Pids of live (non-zombie) processes whose session id is `sid`, by scanning /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as stat:
                text = stat.read()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
        fields = text[text.rfind(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _signal_group(server: Server, signum: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signum)


def _wait_exit(server: Server, timeout: float) -> int:
    try:
        code = server.process.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"server {server.pid} still running {timeout:g} s after the signal; log tail:\n"
            f"{server.log_tail()}"
        ) from None
    server._exit_code = code
    return code


def _wait_session_empty(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while survivors := session_processes(server.pid):
        if time.monotonic() > deadline:
            os.killpg(server.pid, signal.SIGKILL)  # don't leak them into other tests
            raise AssertionError(
                f"processes of server {server.pid} outlived it: {survivors}; log tail:\n"
                f"{server.log_tail()}"
            )
        time.sleep(0.05)


def sigkill(server: Server, *, timeout: float = 10.0) -> int:
    """SIGKILL the server's whole process group (replica workers included); wait until the
    server and every process of its session are gone. Returns the server's exit code."""
    _signal_group(server, signal.SIGKILL)
    code = _wait_exit(server, timeout)
    _wait_session_empty(server, timeout)
    return code


def sigterm(server: Server, *, group: bool = True, timeout: float = EXIT_TIMEOUT_S) -> int:
    """SIGTERM the server's process group (as systemd or Ctrl-C do), or with `group=False` only
    the server process (as `docker stop` does); wait for it and every process of its session to
    exit. Returns the server's exit code."""
    if group:
        _signal_group(server, signal.SIGTERM)
    else:
        server.process.send_signal(signal.SIGTERM)
    code = _wait_exit(server, timeout)
    _wait_session_empty(server, 10.0)
    return code


def _next_log(data_dir: Path) -> Path:
    n = 1
    while (data_dir / f"server-{n}.log").exists():
        n += 1
    return data_dir / f"server-{n}.log"


def _readiness(server: Server, client: httpx.Client) -> httpx.Response | None:
    """GET /health/ready, as the admin key once the server has made it (the answer then lists
    every deployment); None while nothing listens yet."""
    if not server.alive():
        raise RuntimeError(
            f"server exited with code {server.process.returncode} before it was ready; "
            f"log tail:\n{server.log_tail()}"
        )
    key_file = server.data_dir / ADMIN_KEY_FILE
    headers = {"Authorization": f"Bearer {server.admin_key}"} if key_file.exists() else {}
    try:
        return client.get("/health/ready", headers=headers)
    except httpx.TransportError:
        return None


@contextmanager
def running_server(
    repo: Path,
    data_dir: Path,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    ready_timeout: float = READY_TIMEOUT_S,
    args: Iterable[str] = (),
) -> Iterator[Server]:
    """`python -m foretell.cli.main serve repo --port P --data-dir data_dir` (and `args`) in a
    new session, yielded once GET /health/ready answers 200; killed (whole group) on exit if
    still alive. Past `ready_timeout` it raises, naming the models still deploying."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = _next_log(data_dir)
    command = [
        sys.executable,
        "-m",
        "foretell.cli.main",
        "serve",
        str(repo),
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        *args,
    ]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FORETELL_")} | {
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }
    environment |= env or {}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path, data_dir)
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            deadline = time.monotonic() + ready_timeout
            while (answer := _readiness(server, client)) is None or answer.status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"server not ready after {ready_timeout:g} s: {still_deploying(answer)}; "
                        f"log tail:\n{server.log_tail()}"
                    )
                time.sleep(0.1)
        yield server
    finally:
        if server.alive():
            _signal_group(server, signal.SIGKILL)
        process.wait(EXIT_TIMEOUT_S)
        # The workers die with the group; don't leave any behind for the next test.
        if session_processes(server.pid):
            _signal_group(server, signal.SIGKILL)
