"""GET /metrics reports, per model, what ran, how it ended and how long it queued and ran."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("demo/iris", "fixtures/exits-in-predict")

IRIS_1 = "demo/iris:1"
SETOSA = {"features": [[5.1, 3.5, 1.4, 0.2]]}


async def scrape(api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await api.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_finished_predictions_are_counted_by_model_and_status(api) -> None:
    before = await scrape(api)
    for _ in range(3):
        assert (await api.create(IRIS_1, SETOSA, prefer="wait=20"))["status"] == "succeeded"
    failed = await api.create(IRIS_1, {"nope": 1}, prefer="wait=20")
    assert failed["status"] == "failed"
    after = await scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("foretell_predictions_total", model=IRIS_1, status="succeeded") == 3
    assert delta("foretell_predictions_total", model=IRIS_1, status="failed") == 1
    assert delta("foretell_prediction_errors_total", model=IRIS_1, source="user") == 1
    assert delta("foretell_batch_size_count", model=IRIS_1) == 3
    assert delta("foretell_queue_seconds_count", model=IRIS_1) == 3
    assert delta("foretell_execution_seconds_count", model=IRIS_1) == 3
    assert value(after, "foretell_unfinished_predictions", model=IRIS_1) == 0


async def test_a_replica_restart_is_counted(api) -> None:
    model = "fixtures/exits-in-predict:1"
    before = await scrape(api)
    crashed = await api.create(model, {"text": "x"}, prefer="wait=30")
    assert crashed["status"] == "failed"
    after = await scrape(api)
    restarts = value(after, "foretell_replica_restarts_total", model=model) - value(
        before, "foretell_replica_restarts_total", model=model
    )
    assert restarts >= 1
