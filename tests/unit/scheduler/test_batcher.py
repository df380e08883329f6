"""The batching decision with an injected clock: sizes, windows, and a lone request's latency."""

import pytest

from foretell.scheduler import Batcher


def test_a_lone_request_leaves_at_once_with_no_delay() -> None:
    batcher: Batcher[str] = Batcher(max_batch_size=32)
    batcher.add("a", now=10.0)
    assert batcher.wait_s(now=10.0) == 0.0
    assert batcher.take(now=10.0) == ["a"]
    assert len(batcher) == 0


def test_what_accumulated_leaves_together_up_to_the_limit_oldest_first() -> None:
    batcher: Batcher[int] = Batcher(max_batch_size=4)
    for n in range(10):
        batcher.add(n, now=float(n))
    assert batcher.take(now=10.0) == [0, 1, 2, 3]
    assert batcher.take(now=10.0) == [4, 5, 6, 7]
    assert batcher.take(now=10.0) == [8, 9]
    assert batcher.take(now=10.0) == []


def test_a_window_holds_a_partial_batch_until_its_oldest_job_has_waited_it() -> None:
    batcher: Batcher[str] = Batcher(max_batch_size=4, max_delay_s=0.010)
    batcher.add("a", now=1.000)
    batcher.add("b", now=1.004)
    assert batcher.take(now=1.005) == []
    assert batcher.wait_s(now=1.005) == pytest.approx(0.005)
    assert batcher.take(now=1.010) == ["a", "b"]


def test_a_full_batch_leaves_before_its_window_ends() -> None:
    batcher: Batcher[int] = Batcher(max_batch_size=3, max_delay_s=5.0)
    for n in range(3):
        batcher.add(n, now=0.0)
    assert batcher.wait_s(now=0.0) == 0.0
    assert batcher.take(now=0.0) == [0, 1, 2]


def test_nothing_waiting_means_wait_forever() -> None:
    batcher: Batcher[int] = Batcher(max_batch_size=3, max_delay_s=0.5)
    assert batcher.wait_s(now=0.0) == float("inf")
    assert batcher.take(now=99.0) == []


def test_a_removed_job_never_leaves_and_positions_close_up() -> None:
    batcher: Batcher[str] = Batcher(max_batch_size=8)
    for job in "abcd":
        batcher.add(job, now=0.0)
    assert batcher.position("c") == 2
    assert batcher.remove("b") is True
    assert batcher.remove("b") is False
    assert batcher.position("c") == 1
    assert batcher.position("b") is None
    assert batcher.take(now=0.0) == ["a", "c", "d"]
    assert batcher.position("a") is None


def test_removing_the_oldest_restarts_the_window_from_the_next() -> None:
    batcher: Batcher[str] = Batcher(max_batch_size=8, max_delay_s=1.0)
    batcher.add("old", now=0.0)
    batcher.add("new", now=0.6)
    batcher.remove("old")
    assert batcher.wait_s(now=1.0) == pytest.approx(0.6)


def test_take_all_empties_the_queue_in_order() -> None:
    batcher: Batcher[int] = Batcher(max_batch_size=2, max_delay_s=1.0)
    for n in range(5):
        batcher.add(n, now=0.0)
    assert batcher.take_all() == [0, 1, 2, 3, 4]
    assert len(batcher) == 0


def test_limits_are_checked_and_a_job_cannot_wait_twice() -> None:
    with pytest.raises(ValueError, match="max_batch_size must be at least 1, got 0"):
        Batcher(max_batch_size=0)
    with pytest.raises(ValueError, match="max_delay_s must not be negative, got -1"):
        Batcher(max_batch_size=1, max_delay_s=-1)
    batcher: Batcher[str] = Batcher(max_batch_size=1)
    batcher.add("a", now=0.0)
    with pytest.raises(ValueError, match="already waiting"):
        batcher.add("a", now=0.0)
