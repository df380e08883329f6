"""What happens to a prediction that a server stop interrupted."""

from __future__ import annotations

from datetime import UTC, datetime

from foretell.domain import Prediction, PredictionStatus


def interrupted_error(prediction: Prediction, max_reruns: int) -> str | None:
    """The failure message for a prediction interrupted too often, or None to re-run it.

    Re-running is at-least-once, like any retry; capping it stops a model that kills its server
    from doing so forever."""
    if prediction.attempts <= max_reruns:
        return None
    return (
        f"the server stopped while this prediction was processing ({prediction.attempts} "
        f"attempts); it was not re-run again (limit: {max_reruns} re-runs)"
    )


def unreadable_error(prediction: Prediction) -> str | None:
    """The failure message for a stored record that cannot be run, or None to run it.

    Left pending, it would be resumed, fail again and stay pending at every start."""
    if not prediction.unreadable:
        return None
    problems = "; ".join(f"its stored {name}: {why}" for name, why in prediction.unreadable.items())
    return f"this prediction cannot be run as stored ({problems}); it was not run"


def requeue(prediction: Prediction, *, counted: bool = True) -> None:
    """Back to pending. A graceful stop's interruption is not the model's fault: not counted."""
    if prediction.status is PredictionStatus.PROCESSING and not counted:
        prediction.attempts -= 1
    reason = "the server stopped" if counted else "the server shut down"
    if prediction.status is PredictionStatus.PROCESSING:
        prediction.logs += f"[foretell] re-queued: {reason} while this prediction was processing\n"
    prediction.status = PredictionStatus.PENDING
    prediction.started_at = None
    if prediction.streamed is not None:  # its re-run streams its output again, from the start
        prediction.output, prediction.streamed = None, None
    prediction.updated_at = datetime.now(UTC)
