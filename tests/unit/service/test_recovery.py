"""A prediction interrupted by a server stop is re-run a bounded number of times."""

from datetime import UTC, datetime

from foretell.domain import OutputStream, Prediction, PredictionStatus
from foretell.service.recovery import interrupted_error, requeue, unreadable_error


def processing(attempts: int) -> Prediction:
    now = datetime.now(UTC)
    return Prediction(
        id="p1",
        owner="acme",
        name="churn",
        version_number=1,
        status=PredictionStatus.PROCESSING,
        input={},
        created_at=now,
        updated_at=now,
        started_at=now,
        attempts=attempts,
    )


def test_first_interruption_is_re_run() -> None:
    assert interrupted_error(processing(attempts=1), max_reruns=1) is None


def test_second_interruption_fails_naming_the_attempts_and_limit() -> None:
    message = interrupted_error(processing(attempts=2), max_reruns=1)
    assert message is not None
    assert "server stopped while this prediction was processing (2 attempts)" in message
    assert "limit: 1 re-runs" in message


def test_no_reruns_allowed_fails_the_first_interruption() -> None:
    assert interrupted_error(processing(attempts=1), max_reruns=0) is not None


def test_requeue_after_a_crash_keeps_the_attempt_and_says_why() -> None:
    p = processing(attempts=1)
    requeue(p)
    assert (p.status, p.attempts, p.started_at) == (PredictionStatus.PENDING, 1, None)
    assert "re-queued: the server stopped" in p.logs


def test_requeue_after_a_graceful_shutdown_does_not_count_an_attempt() -> None:
    p = processing(attempts=1)
    requeue(p, counted=False)
    assert (p.status, p.attempts) == (PredictionStatus.PENDING, 0)
    assert "re-queued: the server shut down" in p.logs


def test_a_record_read_back_whole_is_run() -> None:
    assert unreadable_error(processing(attempts=0)) is None


def test_a_record_with_a_field_that_cannot_be_read_back_fails_saying_which_and_why() -> None:
    p = processing(attempts=0)
    p.unreadable = {"input": "it nests deeper than 200 levels (at n.0.0.0.0.0.0.0…)"}

    assert unreadable_error(p) == (
        "this prediction cannot be run as stored (its stored input: it nests deeper than 200 "
        "levels (at n.0.0.0.0.0.0.0…)); it was not run"
    )


def test_a_requeued_streamed_prediction_streams_its_output_again_from_the_start() -> None:
    p = processing(attempts=1)
    p.output, p.streamed = "half of it", OutputStream.TEXT
    requeue(p)
    assert (p.output, p.streamed) == (None, None)
