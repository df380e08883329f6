"""Prometheus metrics, per model: what ran, how it ended, how long it queued and ran.

One registry for the process (not prometheus-client's global one, so nothing else leaks in);
every app in the process reports into it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

PREDICTIONS = Counter(
    "foretell_predictions",
    "Predictions that reached a terminal status.",
    ["model", "status"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "foretell_prediction_errors",
    "Failed predictions by where the error came from (user, model, internal).",
    ["model", "source"],
    registry=REGISTRY,
)
REFUSALS = Counter(
    "foretell_admission_refusals",
    "Predictions refused with 429 because the model's queue was full.",
    ["model"],
    registry=REGISTRY,
)
UNFINISHED = Gauge(
    "foretell_unfinished_predictions",
    "Predictions accepted and not yet finished (queued or running).",
    ["model"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "foretell_queue_depth",
    "Predictions waiting for a replica (not yet running).",
    ["model"],
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "foretell_batch_size",
    "Predictions per batch sent to a replica.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    registry=REGISTRY,
)
QUEUE_SECONDS = Histogram(
    "foretell_queue_seconds",
    "From a prediction's creation to its start on a replica.",
    ["model"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
EXECUTION_SECONDS = Histogram(
    "foretell_execution_seconds",
    "Time a replica took for the batch a prediction ran in.",
    ["model"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
RESTARTS = Counter(
    "foretell_replica_restarts",
    "Replicas started again after one died, overran its timeout or was interrupted.",
    ["model"],
    registry=REGISTRY,
)


class ModelMetrics:
    """One model's children of the per-request metrics, bound once: `labels()` takes a lock
    and a dict lookup, and a prediction touched four of them."""

    def __init__(self, model: str) -> None:
        self.queue_seconds = QUEUE_SECONDS.labels(model)
        self.execution_seconds = EXECUTION_SECONDS.labels(model)
        self.statistics = Statistics()  # the same, counted for Triton's statistics extension
        self._model = model
        self._finished: dict[str, Counter] = {}
        self._errors: dict[str, Counter] = {}

    def finished(self, status: str, error_source: str | None) -> None:
        """Count a prediction that reached `status` (and its error's source, if it failed)."""
        counter = self._finished.get(status)
        if counter is None:
            counter = self._finished[status] = PREDICTIONS.labels(self._model, status)
        counter.inc()
        if error_source is not None:
            errors = self._errors.get(error_source)
            if errors is None:
                errors = self._errors[error_source] = ERRORS.labels(self._model, error_source)
            errors.inc()


WEBHOOK_ATTEMPTS = Counter(
    "foretell_webhook_attempts",
    "Webhook delivery attempts by what the event's delivery became: delivered, failing (to be "
    "retried) or dead (given up).",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_BACKLOG = Gauge(
    "foretell_webhook_backlog",
    "Webhook events stored and not yet delivered or given up.",
    registry=REGISTRY,
)


class Tally:
    """How many of something happened and their total time, in nanoseconds."""

    __slots__ = ("count", "ns")

    def __init__(self) -> None:
        self.count = 0
        self.ns = 0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.ns += max(0, round(seconds * 1e9))


class Statistics:
    """One deployment's inference statistics in Triton's terms, counted by this process since
    it started serving the version (other processes sharing the store keep their own)."""

    def __init__(self) -> None:
        self.success = Tally()  # predictions that succeeded, creation to end
        self.fail = Tally()  # predictions that failed, creation to end
        self.queue = Tally()  # creation to start on a replica
        self.compute_infer = Tally()  # each prediction's batch on its replica
        self.executions = 0  # batches run on a replica
        self.last_inference_ms = 0  # when the last prediction ended, ms since the epoch
