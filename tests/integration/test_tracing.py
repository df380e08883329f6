"""OpenTelemetry traces (`otel`): a prediction's request continues the caller's traceparent, and
its queue wait, batch, model run and record write are spans under it (the SDK's in-memory
exporter reads them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from foretell.tracing import use

pytestmark = pytest.mark.anyio

MODELS = ("fixtures/echo",)
SETTINGS = {"otel": True}
ECHO = {"model": "fixtures/echo", "input": {"text": "traced"}}
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider() -> Iterator[None]:
    """The module's app (made after this) traces to EXPORTER, not to a global provider."""
    traced = TracerProvider()
    traced.add_span_processor(SimpleSpanProcessor(EXPORTER))
    use(traced)
    yield
    use(None)


async def spans_of(trace_id: int, wanted: int, timeout_s: float = 20.0) -> list[ReadableSpan]:
    """The trace's spans once `wanted` of them have ended (the record's is the last)."""
    deadline = time.monotonic() + timeout_s
    while True:
        spans = [s for s in EXPORTER.get_finished_spans() if s.context.trace_id == trace_id]
        if len(spans) >= wanted:
            return spans
        assert time.monotonic() < deadline, [s.name for s in spans]
        await asyncio.sleep(0.02)


def by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    named = {s.name: s for s in spans}
    assert len(named) == len(spans), [s.name for s in spans]
    return named


async def test_a_prediction_with_a_traceparent_continues_the_callers_trace(api: Any) -> None:
    response = await api.http.post(
        "/v1/predictions",
        json=ECHO,
        headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01", "Prefer": "wait=10"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "succeeded"

    spans = by_name(await spans_of(int(TRACE_ID, 16), 5))
    assert set(spans) == {
        "POST /v1/predictions",
        "foretell.queue",
        "foretell.batch",
        "foretell.model",
        "foretell.record",
    }
    request = spans["POST /v1/predictions"]
    assert request.parent is not None
    assert request.parent.span_id == int(CALLER_SPAN, 16)
    assert request.parent.is_remote
    assert request.kind is trace.SpanKind.SERVER
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 201
    assert request.attributes["foretell.request_id"] == response.headers["x-request-id"]
    for name in ("foretell.queue", "foretell.batch", "foretell.record"):
        parent = spans[name].parent
        assert parent is not None
        assert parent.span_id == request.context.span_id, name
    batch, model = spans["foretell.batch"], spans["foretell.model"]
    assert model.parent is not None
    assert model.parent.span_id == batch.context.span_id
    assert model.attributes is not None
    assert model.attributes["foretell.prediction.id"] == response.json()["id"]
    # In order: queued, then the batch (the model's run inside it), then the record's write.
    assert spans["foretell.queue"].end_time == batch.start_time
    assert batch.start_time <= model.start_time <= model.end_time == batch.end_time
    assert batch.end_time <= spans["foretell.record"].start_time


async def test_without_a_traceparent_a_request_starts_a_trace_of_its_own(api: Any) -> None:
    response = await api.http.post("/v1/predictions", json=ECHO, headers={"Prefer": "wait=10"})
    assert response.status_code == 201, response.text

    mine = [
        s
        for s in EXPORTER.get_finished_spans()
        if s.name == "POST /v1/predictions"
        and s.attributes is not None
        and s.attributes.get("foretell.request_id") == response.headers["x-request-id"]
    ]
    assert len(mine) == 1
    assert mine[0].parent is None
    assert len(await spans_of(mine[0].context.trace_id, 5)) == 5


async def test_a_route_fastapi_serves_has_one_server_span_ours(api: Any) -> None:
    created = await api.http.post("/v1/predictions", json=ECHO, headers={"Prefer": "wait=10"})
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4736"
    response = await api.http.get(
        f"/v1/predictions/{created.json()['id']}",
        headers={"traceparent": f"00-{trace_id}-{CALLER_SPAN}-01"},
    )
    assert response.status_code == 200, response.text

    (span,) = await spans_of(int(trace_id, 16), 1)
    assert span.name == "GET /v1/predictions/{prediction_id}"  # its route's, not its path
    assert span.parent is not None
    assert span.parent.span_id == int(CALLER_SPAN, 16)
