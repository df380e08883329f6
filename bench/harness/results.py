"""What one compare.py run measured, as plain records the report reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.inprocess import InProcessResult
from harness.wrk import WrkResult

CONNECTIONS = (1, 16, 64)
PEAK = 64  # the connection count the throughput ratios use


@dataclass
class RouteResult:
    """One route on one server: a wrk run per connection count, or why there is none."""

    server: str
    route: str
    runs: dict[int, WrkResult] = field(default_factory=dict)
    note: str | None = None  # "skipped …" / "unavailable: …" / "server died …"
    recorded: bool = False  # True for foretell's native route (the record is persisted)

    def at(self, connections: int) -> WrkResult | None:
        return self.runs.get(connections)


@dataclass
class ModelResults:
    """Everything measured for one model."""

    ref: str
    description: str
    routes: list[RouteResult] = field(default_factory=list)
    in_process: list[InProcessResult] = field(default_factory=list)
    peers_requested: bool = False

    def find(self, server: str) -> list[RouteResult]:
        return [r for r in self.routes if r.server == server]

    def first(self, server: str) -> RouteResult | None:
        found = self.find(server)
        return found[0] if found else None


@dataclass
class StartupResults:
    """foretell serve examples/models: time to the first good prediction, idle memory."""

    cold_start_s: float | None = None
    idle_rss_bytes: int | None = None
    processes: int = 0
