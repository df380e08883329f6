"""A real two-node Ray cluster on loopback for integration tests, through scripts/ray-cluster.sh:
the head on 127.0.0.2, a worker node on 127.0.0.3, each a `ray start` in a session of its own.

Plain helpers, not fixtures (tests import them with `from _ray import ...`). The cluster's folder
is short and under /tmp (Ray's socket paths must fit in 107 bytes); stopping it signals only the
processes of its two sessions, never `ray stop`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ray-cluster.sh"
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
START_TIMEOUT_S = 180.0


@dataclass
class RayCluster:
    """A started cluster: its folder, and the settings a driver needs (DIR/env)."""

    dir: Path

    @property
    def env(self) -> dict[str, str]:
        """FORETELL_RAY_ADDRESS and Ray's token settings, as scripts/ray-cluster.sh wrote them."""
        lines = (self.dir / "env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    @property
    def address(self) -> str:
        return self.env["FORETELL_RAY_ADDRESS"]

    def session(self, node: str) -> int:
        """The session id of `node` (head or worker): every process of that node has it."""
        return int((self.dir / f"{node}.pid").read_text())

    def node_of(self, pid: int) -> str | None:
        """head or worker: the node whose session the live process `pid` belongs to; None for
        neither."""
        try:
            return self.node_by_session(os.getsid(pid))
        except ProcessLookupError:
            return None

    def node_by_session(self, sid: int) -> str | None:
        for node in ("head", "worker"):
            if sid == self.session(node):
                return node
        return None

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [str(SCRIPT), *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            env=os.environ | {"RAY_CLUSTER_CPUS": "2"},
        )
        assert done.returncode == 0, f"ray-cluster.sh {' '.join(args)}: {done.stderr}"
        return done.stdout

    def kill(self, node: str) -> None:
        """SIGKILL every process of `node`, as a machine that loses power."""
        self.run("kill", str(self.dir), node)

    def up(self) -> None:
        """Start whichever node is not running (a killed one comes back as a new node)."""
        self.run("up", str(self.dir))


@contextmanager
def ray_cluster() -> Iterator[RayCluster]:
    """Start the two nodes (about 10 s); stop them, whatever happened, on the way out."""
    cluster = RayCluster(Path(tempfile.mkdtemp(prefix="ft-ray-", dir="/tmp")))
    try:
        cluster.up()
        yield cluster
    finally:
        # SIGKILL, not `down`: a node drains for seconds on SIGTERM, and nothing here needs it.
        for node in ("worker", "head"):
            subprocess.run([str(SCRIPT), "kill", str(cluster.dir), node], capture_output=True)
        shutil.rmtree(cluster.dir, ignore_errors=True)
