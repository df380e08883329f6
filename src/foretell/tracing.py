"""OpenTelemetry traces (the `otel` extra, `Settings.otel`): a request's span, continued from its
`traceparent`, and its prediction's queue wait, batch, model run and record write under it.

Off (the default), or with the extra absent, `tracing(settings)` is None: callers guard each
use with `if tracer is not None`, so nothing of OpenTelemetry is imported and a request pays
one attribute test. On, spans go to the tracer provider already installed (a test's, or
`opentelemetry-instrument`'s), else to one made here whose exporter the standard
OTEL_TRACES_EXPORTER names (`otlp`, the spec's default, needs an OTLP exporter package;
`console`; `none`), with OTEL_SERVICE_NAME (default `foretell`) and the SDK's other OTEL_*.

A prediction's spans are made when it ends, from its record's timestamps (queue: created to
started; batch: its batch's start to end, shared by the batch's predictions; model: the
replica's execution, at the batch's end), and the record's span from its terminal write's
queueing to its commit: nothing is added to the path of a prediction while tracing is off,
and only a task a prediction while it is on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from foretell.config import Settings

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

    from foretell.domain import Prediction

log = logging.getLogger(__name__)
TRACEPARENT, TRACESTATE = b"traceparent", b"tracestate"


class Tracing:
    """Makes foretell's spans on `tracer` (opentelemetry's, imported only once tracing is on)."""

    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry import context, trace
        from opentelemetry.propagate import extract

        self._tracer = tracer
        self._context = context
        self._trace = trace
        self._extract = extract

    def request(
        self, method: str, route: str, headers: Iterable[tuple[bytes, bytes]]
    ) -> tuple[Span, object]:
        """A request's span, its parent the caller's `traceparent` if any, made current: the
        span and the token that `ended` takes."""
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in headers
            if name in (TRACEPARENT, TRACESTATE)
        }
        parent = self._extract(carrier) if carrier else None
        span = self._tracer.start_span(
            f"{method} {route}",
            context=parent,
            kind=self._trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route},
        )
        token = self._context.attach(self._trace.set_span_in_context(span, parent))
        return span, token

    def ended(
        self,
        span: Span,
        token: object,
        status: int,
        request_id: str | None,
        route: tuple[str, str] | None = None,
    ) -> None:
        """The request's answer was `status`: its span ends, and is no longer current. `route`:
        the method and path template its router found, to name it by (the path was a guess)."""
        if route is not None:
            span.update_name(f"{route[0]} {route[1]}")
            span.set_attribute("http.route", route[1])
        span.set_attribute("http.response.status_code", status)
        if request_id is not None:
            span.set_attribute("foretell.request_id", request_id)
        if status >= 500:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
        span.end()
        self._context.detach(token)  # type: ignore[arg-type]

    def current(self) -> Context:
        """The context a prediction created now has its spans in (its request's span)."""
        return self._context.get_current()

    def prediction(self, p: Prediction, parent: Context, written: tuple[int, int] | None) -> None:
        """`p`'s spans, now that it ended, under `parent`: queue, batch, model and, with
        `written` (ns since the epoch, queued and committed), its record's write."""
        attributes: dict[str, Any] = {
            "foretell.prediction.id": p.id,
            "foretell.model": f"{p.owner}/{p.name}",
            "foretell.version": p.version_number,
            "foretell.status": p.status.value,
        }
        start = self._start
        if p.started_at is not None:
            start("foretell.queue", parent, _ns(p.created_at), _ns(p.started_at), attributes)
            if p.completed_at is not None:
                ended = _ns(p.completed_at)
                batch = start("foretell.batch", parent, _ns(p.started_at), ended, attributes)
                if p.execution_time is not None:
                    inside = self._trace.set_span_in_context(batch, parent)
                    ran = ended - int(p.execution_time.total_seconds() * 1e9)
                    start("foretell.model", inside, max(ran, _ns(p.started_at)), ended, attributes)
        if written is not None:
            start("foretell.record", parent, written[0], written[1], attributes)

    def _start(
        self, name: str, parent: Context, start: int, end: int, attributes: dict[str, Any]
    ) -> Span:
        span = self._tracer.start_span(
            name, context=parent, start_time=start, attributes=attributes
        )
        span.end(end_time=max(start, end))
        return span


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1e9)


def tracing(settings: Settings) -> Tracing | None:
    """The server's tracing, one a process: None when `settings.otel` is off or the `otel`
    extra is not installed (said once, as a warning)."""
    return _tracing() if settings.otel else None


_chosen: Any = None  # a provider given to `use`, over the global one


def use(provider: Any) -> None:
    """Trace to `provider` (an SDK TracerProvider) rather than the process's global one, for
    servers made from now (None: the global one again). For tests and embedding applications:
    the global provider can be set only once, and FastAPI's own telemetry turns on for every
    app once it is."""
    global _chosen
    _chosen = provider
    _tracing.cache_clear()


@cache
def _tracing() -> Tracing | None:
    try:
        from opentelemetry import trace
    except ImportError:
        log.warning(
            "otel is on, but OpenTelemetry is not installed (pip install 'foretell[otel]'): "
            "no traces"
        )
        return None
    if _chosen is not None:
        return Tracing(_chosen.get_tracer("foretell"))
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):  # nobody installed one: ours
        provider = _provider()
        if provider is None:
            return None
        trace.set_tracer_provider(provider)
    return Tracing(provider.get_tracer("foretell"))


def _provider() -> Any:
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        log.warning("otel is on, but opentelemetry-sdk is not installed: no traces")
        return None
    name = os.environ.get("OTEL_SERVICE_NAME", "foretell")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    wanted = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")[0].strip()
    exporter: Any = None
    if wanted == "console":
        exporter = ConsoleSpanExporter()
    elif wanted == "otlp":
        try:  # reads OTEL_EXPORTER_OTLP_* itself
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError:
            log.warning(
                "OTEL_TRACES_EXPORTER is otlp (the default), but no OTLP exporter is installed "
                "(pip install opentelemetry-exporter-otlp-proto-http): spans are made, not sent"
            )
        else:
            exporter = OTLPSpanExporter()
    elif wanted != "none":
        log.warning("OTEL_TRACES_EXPORTER '%s' is none of otlp, console, none: not sent", wanted)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
