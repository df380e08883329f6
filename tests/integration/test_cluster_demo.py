"""scripts/cluster.sh demo, end to end on a smaller count: PostgreSQL, a two-node Ray cluster on
127.0.0.2/127.0.0.3 and two API processes, started by the script; predictions submitted across
both while the Ray worker node and then one API process are SIGKILLed. Every accepted
prediction ends (the survivor takes the dead process's work once its lease expires), none runs
twice to completion, every failure is internal and names its cause; `cluster.sh down` leaves no
process of it behind."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _server import free_port, session_processes, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgresql]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cluster.sh"
COUNT = 60
# A bound for a loaded machine, not the expected time (about 60 s on an idle 2-core one).
DEMO_TIMEOUT_S = 400.0
LAST_LINE = re.compile(
    r"(\d+) accepted, (\d+) terminal \((\d+) succeeded, (\d+) failed as internal\), "
    r"(\d+) lost, (\d+) run twice to completion"
)
# The demo's account of its failures, one line per message: "[  12.3 s]   2 failed: <message>".
FAILURE = re.compile(r"^\[[ \d.]+ s\]\s+(\d+) failed: (.*)$", re.MULTILINE)
# What a failure in the demo may say: its replica's Ray node was lost, or the API process
# running it died mid-run (cluster.sh runs the servers with FORETELL_MAX_RERUNS=0).
EXPECTED_FAILURES = ("on Ray node 127.0.0.3", "while this prediction was processing")


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A short folder (Ray's socket paths) that `postgres` may enter; afterwards, whatever
    happened, `cluster.sh down` on it — also if this session dies: a watchdog runs it once its
    stdin closes."""
    folder = Path(tempfile.mkdtemp(prefix="ft-cl-", dir="/tmp"))
    folder.chmod(0o755)  # the server runs as `postgres` when the tests run as root
    watchdog = subprocess.Popen(
        ["bash", "-c", 'cat >/dev/null; "$0" down "$1" >/dev/null 2>&1', SCRIPT, folder],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield folder
    finally:
        assert watchdog.stdin is not None
        watchdog.stdin.close()
        watchdog.wait(120)
        shutil.rmtree(folder, ignore_errors=True)


def sessions(folder: Path) -> dict[str, int]:
    """The session of each API process and Ray node, and PostgreSQL's postmaster pid."""
    found = {}
    for name, path in [
        ("api-1", folder / "api-1.pid"),
        ("api-2", folder / "api-2.pid"),
        ("ray head", folder / "ray" / "head.pid"),
        ("ray worker", folder / "ray" / "worker.pid"),
    ]:
        if path.exists():
            found[name] = int(path.read_text())
    postmaster = folder / "pg" / "data" / "postmaster.pid"
    if postmaster.exists():
        found["postgresql"] = int(postmaster.read_text().splitlines()[0])
    return found


def test_the_demo_loses_nothing_and_runs_nothing_twice(cluster_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORETELL_", "DEMO_"))}
    ports = {free_port()}
    while len(ports) < 2:
        ports.add(free_port())
    env |= {
        "CLUSTER_PORTS": " ".join(map(str, ports)),
        "DEMO_COUNT": str(COUNT),
        # The survivor's wait for the dead process's work past its lease (cluster.sh's 5 s; a
        # shorter one risks a live but starved process losing its work on a loaded machine):
        # about 5 s here.
        "DEMO_DEADLINE_S": "60",
    }
    try:
        done = subprocess.run(
            [str(SCRIPT), "demo", str(cluster_dir)],
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT_S,
            env=env,
        )
        started = sessions(cluster_dir)
    finally:
        stopped = subprocess.run(
            [str(SCRIPT), "down", str(cluster_dir)], capture_output=True, text=True, timeout=120
        )

    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, output
    match = LAST_LINE.fullmatch(done.stdout.splitlines()[-1])
    assert match, output
    accepted, terminal, succeeded, internal, lost, twice = map(int, match.groups())
    assert (accepted, terminal, lost, twice) == (COUNT, COUNT, 0, 0), output
    assert succeeded + internal == terminal, output
    failures = [m.groups() for m in FAILURE.finditer(done.stdout)]
    assert sum(int(n) for n, _ in failures) == internal, output
    assert all(any(why in message for why in EXPECTED_FAILURES) for _, message in failures), output
    # Both kills happened, and the survivor took the dead process's work.
    assert "SIGKILLed the Ray worker node 127.0.0.3" in done.stdout, output
    assert "SIGKILLed API process 1" in done.stdout, output

    assert stopped.returncode == 0, stopped.stderr
    assert set(started) == {"api-1", "api-2", "ray head", "ray worker", "postgresql"}, started
    left = {name: session_processes(sid) for name, sid in started.items() if name != "postgresql"}
    assert not any(left.values()), f"processes outlived cluster.sh down: {left}"
    # pg_ctl's stop returns once the server removed its pid file, just before it exits.
    postmaster = Path(f"/proc/{started['postgresql']}")
    wait_for(lambda: not postmaster.exists(), timeout=30, what="PostgreSQL to exit")
