"""One reservation per prediction: taken once (or refused, holding nothing), released once."""

import pytest

from foretell.errors import Overloaded, TooManyUnfinished
from foretell.manifest import Batching
from foretell.scheduler import Admission
from foretell.service.reservation import Reservation, Unfinished


def admission(limit: int) -> Admission:
    """Room for `limit` unfinished predictions: one running, the rest queued (at least 1)."""
    slots = Admission("acme/m:1", Batching(max_batch_size=1, max_queue_size=max(limit - 1, 1)), 1)
    assert slots.limit == max(limit, 2)
    return slots


def test_a_second_release_gives_back_nothing_more() -> None:
    slots, owners = admission(4), Unfinished(limit=4)
    first = Reservation.take(slots, owners, "acme")
    Reservation.take(slots, owners, "acme")
    first.release()
    first.release()
    assert (slots.unfinished, owners["acme"], first.held) == (1, 1, False)


def test_an_owner_at_its_limit_is_refused_holding_no_admission_slot() -> None:
    slots, owners = admission(4), Unfinished(limit=1)
    Reservation.take(slots, owners, "acme")
    with pytest.raises(TooManyUnfinished):
        Reservation.take(slots, owners, "acme")
    assert (slots.unfinished, owners["acme"]) == (1, 1)


def test_a_full_queue_is_refused_counting_nothing_against_the_owner() -> None:
    slots, owners = admission(2), Unfinished(limit=4)
    Reservation.take(slots, owners, "acme")
    Reservation.take(slots, owners, "acme")
    with pytest.raises(Overloaded):
        Reservation.take(slots, owners, "acme")
    assert (slots.unfinished, owners["acme"]) == (2, 2)


def test_a_waiting_callers_reservation_counts_no_owner() -> None:
    slots, owners = admission(4), Unfinished(limit=1)
    waiting = Reservation.take(slots, owners, None)
    waiting.release()
    assert (slots.unfinished, owners["acme"]) == (0, 0)


def test_work_taken_over_is_counted_past_the_limits() -> None:
    slots, owners = admission(2), Unfinished(limit=1)
    Reservation.take(slots, owners, "acme")
    Reservation.retake(slots, owners, "acme")
    again = Reservation.retake(slots, owners, "acme")
    assert (slots.unfinished, owners["acme"]) == (3, 3)
    again.release()
    assert (slots.unfinished, owners["acme"]) == (2, 2)
