"""Admission refuses what a deployment cannot start soon, and says when to come back."""

import asyncio

import pytest

from foretell.errors import Overloaded
from foretell.manifest import Batching
from foretell.scheduler import Admission


def admission(batch: int = 1, queue: int = 2, replicas: int = 1) -> Admission:
    return Admission("acme/churn:1", Batching(max_batch_size=batch, max_queue_size=queue), replicas)


def test_room_is_the_running_batches_plus_the_queue() -> None:
    gate = admission(batch=4, queue=3, replicas=2)
    for _ in range(2 * 4 + 3):
        gate.admit()
    with pytest.raises(Overloaded, match=r"3 predictions already queued"):
        gate.admit()


def test_a_finished_prediction_makes_room_again() -> None:
    gate = admission(queue=1)
    gate.admit()
    gate.admit()
    gate.release()
    gate.admit()
    assert gate.unfinished == 2


def test_predictions_accepted_before_a_restart_are_never_refused() -> None:
    gate = admission(queue=1)
    for _ in range(5):
        gate.readmit()
    assert gate.unfinished == 5
    with pytest.raises(Overloaded):
        gate.admit()


def test_retry_after_is_one_second_before_anything_was_observed() -> None:
    gate = admission(queue=1)
    gate.admit()
    gate.admit()
    with pytest.raises(Overloaded) as refused:
        gate.admit()
    assert refused.value.retry_after_s == 1


def test_retry_after_follows_the_observed_batch_time() -> None:
    gate = admission(batch=1, queue=1, replicas=1)
    gate.observe(3.0)
    gate.admit()
    gate.admit()
    with pytest.raises(Overloaded) as refused:
        gate.admit()
    assert refused.value.retry_after_s == 3


def test_batch_time_is_smoothed_not_replaced() -> None:
    gate = admission()
    gate.observe(10.0)
    gate.observe(0.0)
    assert gate.retry_after_s() == 8  # 10 + 0.2 * (0 - 10)


def test_a_new_max_resizes_the_room_and_the_eta_at_once() -> None:
    gate = admission(batch=1, queue=2, replicas=1)
    gate.observe(2.0)
    assert gate.eta_s(3) == 8.0  # four waves of one
    gate.resize(4)
    assert gate.eta_s(3) == 2.0  # one wave of four
    for _ in range(4 + 2):
        gate.admit()
    with pytest.raises(Overloaded):
        gate.admit()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_drained_waits_for_every_unfinished_prediction_and_any_may_wait(
    anyio_backend: str,
) -> None:
    gate = admission(queue=2)
    await gate.drained()  # none unfinished: at once
    gate.admit()
    gate.admit()
    waiters = [asyncio.ensure_future(gate.drained()) for _ in range(2)]
    gate.release()
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    gate.release()
    await asyncio.wait_for(asyncio.gather(*waiters), 5)
