"""The scaling rule on its own: when a deployment starts one more replica or stops one, given
what its queue and replicas show at a clock time the test chooses (no sleeps)."""

from __future__ import annotations

from foretell.manifest import ReplicaRange
from foretell.scheduler.autoscale import NEVER, Decision, Seen, decide

RANGE = ReplicaRange(min=1, max=3, idle_s=60, target_wait_s=2)
TO_ZERO = ReplicaRange(min=0, max=2, idle_s=60, target_wait_s=2)
BUSY = None  # an entry of Seen.idle_since: that replica runs a batch


def test_up_to_min_start_together_even_while_others_start() -> None:
    wide = ReplicaRange(min=3, max=4)
    assert decide(wide, Seen(idle_since=[], starting=2), now=0).start
    assert not decide(wide, Seen(idle_since=[], starting=3), now=0).start


def test_work_queued_with_none_running_starts_one_at_once() -> None:
    seen = Seen(idle_since=[], queued=1, oldest_queued_at=10.0)
    assert decide(TO_ZERO, seen, now=10.0) == Decision(start=True)


def test_nothing_queued_and_none_running_at_min_zero_starts_none() -> None:
    assert decide(TO_ZERO, Seen(idle_since=[]), now=0) == Decision()


def test_a_queue_younger_than_the_target_wait_starts_none_and_says_when_to_look_again() -> None:
    seen = Seen(idle_since=[BUSY], queued=4, oldest_queued_at=100.0)
    decision = decide(RANGE, seen, now=101.5)
    assert not decision.start
    assert decision.recheck_s == 0.5


def test_grows_once_the_oldest_queued_job_has_waited_the_target() -> None:
    seen = Seen(idle_since=[BUSY], queued=1, oldest_queued_at=100.0)
    assert decide(RANGE, seen, now=102.0).start


def test_a_queue_that_waited_with_a_replica_free_starts_none() -> None:
    # e.g. it waited for the replica started from zero, which is about to take it
    seen = Seen(idle_since=[105.0], queued=1, oldest_queued_at=100.0)
    assert not decide(TO_ZERO, seen, now=105.0).start


def test_never_past_max() -> None:
    seen = Seen(idle_since=[BUSY, BUSY, BUSY], queued=50, oldest_queued_at=0.0)
    assert decide(RANGE, seen, now=1000.0) == Decision()


def test_one_start_at_a_time_beyond_min() -> None:
    seen = Seen(idle_since=[BUSY], starting=1, queued=50, oldest_queued_at=0.0)
    assert decide(RANGE, seen, now=1000.0) == Decision()
    # the queue that waits for a replica being started from zero starts no second one
    assert decide(TO_ZERO, Seen(idle_since=[], starting=1, queued=9, oldest_queued_at=0.0), 99) == (
        Decision()
    )


def test_an_idle_replica_stops_after_idle_s_not_before() -> None:
    seen = Seen(idle_since=[BUSY, 40.0])
    early = decide(RANGE, seen, now=99.0)
    assert early.stop is None
    assert early.recheck_s == 1.0
    assert decide(RANGE, seen, now=100.0).stop == 1


def test_the_longest_idle_stops_first() -> None:
    assert decide(RANGE, Seen(idle_since=[50.0, 10.0, 30.0]), now=500.0).stop == 1


def test_shrinks_no_lower_than_min() -> None:
    assert decide(RANGE, Seen(idle_since=[0.0]), now=1e6) == Decision()


def test_shrinks_to_zero_with_min_zero() -> None:
    assert decide(TO_ZERO, Seen(idle_since=[0.0]), now=60.0).stop == 0


def test_no_idle_stop_while_work_waits() -> None:
    seen = Seen(idle_since=[0.0, BUSY], queued=1, oldest_queued_at=999.5)
    decision = decide(RANGE, seen, now=1000.0)
    assert decision.stop is None


def test_a_busy_replica_never_stops() -> None:
    assert decide(TO_ZERO, Seen(idle_since=[BUSY]), now=1e6) == Decision()


def test_beyond_a_lowered_max_an_idle_replica_stops_at_once() -> None:
    lowered = ReplicaRange(min=0, max=1, idle_s=600)
    assert decide(lowered, Seen(idle_since=[BUSY, 99.0]), now=100.0).stop == 1


def test_raising_min_starts_more_at_once() -> None:
    raised = ReplicaRange(min=2, max=3)
    assert decide(raised, Seen(idle_since=[5.0]), now=6.0).start


def test_when_nothing_can_change_it_waits_for_a_cue() -> None:
    assert decide(RANGE, Seen(idle_since=[BUSY]), now=5.0).recheck_s == NEVER
