"""Ratios between measured rows, and the targets foretell is held to."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.results import PEAK, ModelResults, RouteResult, StartupResults
from harness.wrk import WrkResult

PEERS = ("MLServer", "LitServe", "BentoML")
MB = 1_000_000


@dataclass(frozen=True)
class Comparison:
    """One derived number: its value (None if it could not be measured) and how to show it."""

    label: str
    value: float | None
    text: str
    flagged: bool = False  # a run behind it had errors: the number is not trustworthy
    noisy: bool = False  # other processes took a share of a pinned core during a run behind it


@dataclass(frozen=True)
class Target:
    """A goal: the comparison's value must be >= (or <=) the threshold."""

    goal: str
    comparison: Comparison
    threshold: float
    at_most: bool = False  # True: value <= threshold passes

    def verdict(self) -> str:
        value = self.comparison.value
        if value is None or math.isnan(value):
            return "n/a"
        if self.comparison.flagged:
            return "✘ (errors in a run)"
        # Judged on the value as shown (2 decimals): "4.00x" next to ✘ would read as a bug, and
        # run-to-run noise is far larger than the rounding anyway.
        value = round(value, 2)
        ok = value <= self.threshold if self.at_most else value >= self.threshold
        return ("✔" if ok else "✘") + (" (noisy)" if self.comparison.noisy else "")


def native(model: ModelResults) -> RouteResult | None:
    """foretell's recorded native route: what "foretell" means in every ratio."""
    return next((r for r in model.routes if r.server == "foretell" and r.recorded), None)


def unrecorded(model: ModelResults) -> list[RouteResult]:
    """foretell's other routes that were actually measured."""
    return [r for r in model.routes if r.server == "foretell" and not r.recorded and r.runs]


def _missing(label: str, *routes: RouteResult | None) -> Comparison:
    notes = [r.note for r in routes if r is not None and r.note]
    return Comparison(label, None, f"n/a ({notes[0]})" if notes else "n/a")


def _noisy(*runs: WrkResult) -> bool:
    return any(run.noisy for run in runs)


def throughput_ratio(label: str, a: RouteResult | None, b: RouteResult | None) -> Comparison:
    """a's req/s over b's, both at the peak connection count."""
    run_a, run_b = (r.at(PEAK) if r else None for r in (a, b))
    if run_a is None or run_b is None or run_b.rps == 0:
        return _missing(label, a, b)
    value = run_a.rps / run_b.rps
    text = f"{value:.2f}x ({run_a.rps:,.0f} / {run_b.rps:,.0f} req/s)"
    return Comparison(label, value, text, bool(run_a.errors or run_b.errors), _noisy(run_a, run_b))


def p50_ratio(label: str, a: RouteResult | None, b: RouteResult | None) -> Comparison:
    """a's p50 over b's, both at one connection (lower is better)."""
    run_a, run_b = (r.at(1) if r else None for r in (a, b))
    if run_a is None or run_b is None or not run_b.p50_ms:
        return _missing(label, a, b)
    value = run_a.p50_ms / run_b.p50_ms
    text = f"{value:.2f}x ({run_a.p50_ms:.2f} ms vs {run_b.p50_ms:.2f} ms)"
    return Comparison(label, value, text, bool(run_a.errors or run_b.errors), _noisy(run_a, run_b))


def in_process_ratio(model: ModelResults) -> Comparison:
    """foretell rows/s at the peak (one row per request) over the best in-process rows/s."""
    label = f"foretell rows/s @{PEAK} ÷ in-process best rows/s"
    route, best = native(model), max(model.in_process, key=lambda r: r.rows_per_s, default=None)
    run = route.at(PEAK) if route else None
    if run is None or best is None:
        return _missing(label, route)
    value = run.rps / best.rows_per_s
    text = f"{value:.2f}x ({run.rps:,.0f} / {best.rows_per_s:,.0f} at batch {best.batch})"
    return Comparison(label, value, text, bool(run.errors), run.noisy)


def ratios(model: ModelResults, heavy: bool) -> list[Comparison]:
    """Every ratio row for one model's table."""
    foretell, naive = native(model), model.first("naive FastAPI")
    rows = [throughput_ratio(f"foretell / naive FastAPI, req/s @{PEAK}", foretell, naive)]
    naive_def = model.first("naive FastAPI def")
    if naive_def is not None:
        label = f"foretell / naive FastAPI (def), req/s @{PEAK}"
        rows.append(throughput_ratio(label, foretell, naive_def))
    if model.peers_requested:
        for peer in PEERS:
            label = f"foretell / {peer}, req/s @{PEAK}"
            rows.append(throughput_ratio(label, foretell, model.first(peer)))
    ceiling = model.first("Starlette constant")
    rows.append(throughput_ratio(f"foretell / Starlette ceiling, req/s @{PEAK}", foretell, ceiling))
    rows.append(p50_ratio("foretell p50 @1 vs naive p50 @1", foretell, naive))
    for other in unrecorded(model):
        label = f"native (recorded) / {other.route}, req/s @{PEAK}"
        rows.append(throughput_ratio(label, foretell, other))
    if heavy:
        rows.append(in_process_ratio(model))
    return rows


def model_targets(model: ModelResults, heavy: bool) -> list[Target]:
    """The per-model targets; peers and unrecorded routes only where they were measured."""
    foretell, naive = native(model), model.first("naive FastAPI")
    ref = model.ref
    targets = [
        Target(
            f"{ref}: foretell ≥ 2x naive @{PEAK}",
            throughput_ratio("", foretell, naive),
            2.0,
        ),
        Target(
            f"{ref}: foretell ≥ 0.5x Starlette ceiling @{PEAK}",
            throughput_ratio("", foretell, model.first("Starlette constant")),
            0.5,
        ),
    ]
    if model.peers_requested:
        for peer in PEERS:
            comparison = throughput_ratio("", foretell, model.first(peer))
            targets.append(Target(f"{ref}: foretell ≥ 4x {peer} @{PEAK}", comparison, 4.0))
    others = unrecorded(model)
    if not heavy:  # the unrecorded routes' own goal, on the model whose cost is HTTP's
        for other in others:
            comparison = throughput_ratio("", other, naive)
            targets.append(Target(f"{ref}: {other.route} ≥ 2.5x naive @{PEAK}", comparison, 2.5))
        if not others:
            none = Comparison("", None, "n/a (no unrecorded route measured)")
            targets.append(Target(f"{ref}: GPUX and OIP unrecorded ≥ 2.5x naive", none, 2.5))
    for route in [foretell, *others]:  # every route answers one caller as fast as naive does
        name = route.route if route is not None else "foretell native (recorded)"
        comparison = p50_ratio("", route, naive)
        targets.append(
            Target(f"{ref}: {name} p50 @1 ≤ naive p50 @1", comparison, 1.0, at_most=True)
        )
    if heavy:
        targets.append(Target(f"{ref}: ≥ 0.7x in-process best", in_process_ratio(model), 0.7))
    return targets


def startup_targets(startup: StartupResults) -> list[Target]:
    """Cold start and idle memory of `foretell serve examples/models`."""
    cold = startup.cold_start_s
    rss = startup.idle_rss_bytes
    cold_text = f"{cold:.2f} s" if cold is not None else "n/a"
    rss_text = f"{rss / MB:.0f} MB ({startup.processes} processes)" if rss is not None else "n/a"
    return [
        Target("cold start ≤ 1.0 s", Comparison("", cold, cold_text), 1.0, at_most=True),
        Target(
            "idle RSS ≤ 200 MB",
            Comparison("", rss / MB if rss is not None else None, rss_text),
            200.0,
            at_most=True,
        ),
        # Measured beside the HTTP route by bench/grpc_oip.py, which needs a server with gRPC on.
        Target(
            "gRPC infer ≥ 1.5x HTTP OIP infer req/s",
            Comparison("", None, "n/a here: see bench/grpc_oip.py"),
            1.5,
        ),
    ]
