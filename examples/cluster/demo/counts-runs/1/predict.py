"""Sleeps for `ms` milliseconds, then appends `done <tag> <pid>` to $FORETELL_DEMO_RUNS/runs.log
(one write, flushed and fsynced): so the cluster demo can count how often each prediction ran to
completion, across the deaths of Ray nodes and API processes. A run killed mid-sleep writes
nothing. The folder comes from the environment of the Ray nodes (scripts/cluster.sh sets it
before it starts them), never from a caller's input."""

import os
import time

from foretell.sdk import Input, Predictor

ENV = "FORETELL_DEMO_RUNS"


class CountsRuns(Predictor):
    def setup(self) -> None:
        folder = os.environ.get(ENV)
        if not folder:
            raise RuntimeError(f"set {ENV} (on every Ray node) to the folder that gets runs.log")
        self.log = os.path.join(folder, "runs.log")

    def predict(
        self,
        tag: str = Input(description="the prediction's name in the log", max_length=64),
        ms: int = Input(default=100, ge=0, le=10_000, description="how long to sleep"),
    ) -> int:
        time.sleep(ms / 1000)
        # O_APPEND and one write: lines from replicas on any node never interleave.
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"done {tag} {os.getpid()}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return os.getpid()
