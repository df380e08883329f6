"""bench/RESULTS.md: the run's header, one table per model, ratios and the targets, in Markdown."""

from __future__ import annotations

import contextlib
import math
import os
import platform
from dataclasses import dataclass

from harness.comparisons import Comparison, Target
from harness.inprocess import InProcessResult
from harness.results import CONNECTIONS, ModelResults, RouteResult
from harness.wrk import WrkResult

NOTE_CHARS = 240  # a failure note goes in one table cell: keep it to one readable line


@dataclass(frozen=True)
class Header:
    """Where and how the run happened."""

    date: str
    machine: str
    python: str
    command: str
    setup: str
    load_at_end: str = ""
    total_s: float = 0.0


def machine_summary() -> str:
    """nproc, usable cores, CPU model, kernel and the load average right now."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpu = names[0] if names else cpu
    usable = len(os.sched_getaffinity(0))
    return (
        f"nproc={os.cpu_count()} ({usable} usable), {cpu}, {platform.system()} "
        f"{platform.release()}, load average at start {load_average()}"
    )


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _cell(text: str) -> str:
    """One table cell: no newlines, no pipes, not too long."""
    flat = " ".join(text.replace("|", "/").split())
    return flat if len(flat) <= NOTE_CHARS else flat[: NOTE_CHARS - 1] + "…"


def _table(head: list[str], rows: list[list[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(head))]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def _others(run: WrkResult) -> str:
    text = f"{run.others_server:.0%} / {run.others_client:.0%}"
    return f"⚠ {text}" if run.noisy else text


def _cpu(run: WrkResult) -> str:
    value = run.cpu_us_per_request
    return "-" if math.isnan(value) else f"{value:,.0f}"


def _route_rows(route: RouteResult) -> list[list[str]]:
    if not route.runs:
        return [[route.route, "-", "-", "-", "-", "-", route.note or "no runs", "-"]]
    rows = []
    for connections in CONNECTIONS:
        run = route.at(connections)
        if run is None:
            continue
        errors = f"⚠ {run.errors} ({run.error_text()})" if run.errors else "0"
        rps = f"{run.rps:,.0f}" + (" ⚠" if run.errors else "")
        cells = [rps, _ms(run.p50_ms), _ms(run.p99_ms), _cpu(run), errors, _others(run)]
        rows.append([route.route, str(connections), *cells])
    if route.note:  # measured, then something went wrong (e.g. the server died)
        rows.append([route.route, "-", "-", "-", "-", "-", route.note, "-"])
    return rows


def http_table(model: ModelResults) -> list[str]:
    head = ["server / route", "conns", "req/s", "p50 ms", "p99 ms", "server CPU µs/req"]
    head += ["errors", "others core 0 / 1"]
    rows = [row for route in model.routes for row in _route_rows(route)]
    return _table(head, rows, right_from=1)


def ratio_table(comparisons: list[Comparison]) -> list[str]:
    rows = [
        [
            c.label,
            c.text
            + (" ⚠ errors in a run" if c.flagged else "")
            + (" ⚠ noisy run" if c.noisy else ""),
        ]
        for c in comparisons
    ]
    return _table(["ratio", "value"], rows, right_from=2)


def in_process_table(results: list[InProcessResult]) -> list[str]:
    head = ["batch", "calls", "p50 ms / call", "rows/s"]
    rows = [
        [str(r.batch), f"{r.calls:,}", f"{r.p50_ms:.3f}", f"{r.rows_per_s:,.0f}"] for r in results
    ]
    return _table(head, rows)


def targets_table(targets: list[Target]) -> list[str]:
    rows = [[t.goal, t.comparison.text, t.verdict()] for t in targets]
    return _table(["target", "measured", ""], rows, right_from=3)


def render(
    header: Header,
    models: list[tuple[ModelResults, list[Comparison]]],
    targets: list[Target],
    startup_rows: list[list[str]],
) -> str:
    """The whole RESULTS.md."""
    lines = [
        "# foretell side by side: throughput and latency",
        "",
        "Written by `bench/compare.py` (see bench/README.md); overwritten by every run.",
        "",
        f"- date: {header.date}",
        f"- machine: {header.machine}; load average at end {header.load_at_end}",
        f"- python: {header.python}",
        f"- command: `{header.command}`",
        f"- setup: {header.setup}",
        f"- total time: {header.total_s:.0f} s",
        "",
        "## Targets",
        "",
        *targets_table(targets),
    ]
    for model, comparisons in models:
        lines += ["", f"## {model.ref}", "", model.description, ""]
        lines += ["### HTTP (wrk)", "", *http_table(model), ""]
        lines += ["### Ratios", "", *ratio_table(comparisons), ""]
        lines += ["### In-process onnxruntime limit (session.run, 1 thread, core 0)", ""]
        lines += in_process_table(model.in_process)
    lines += ["", "## foretell startup (`foretell serve examples/models`)", ""]
    lines += _table(["measure", "value"], startup_rows, right_from=2)
    return "\n".join(lines) + "\n"
