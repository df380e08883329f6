"""Retry policy: which answers are retried, how long to wait, when to give up."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from foretell.domain import DeliveryStatus
from foretell.webhooks.policy import RetryPolicy, retry_after_s, retryable

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (None, True),
        (408, True),
        (429, True),
        (500, True),
        (503, True),
        (599, True),
        (400, False),
        (401, False),
        (404, False),
        (410, False),
        (301, False),
        (200, False),
    ],
)
def test_what_is_retried(code: int | None, expected: bool) -> None:
    assert retryable(code) is expected


def test_each_wait_is_about_the_time_spent_so_far_capped_and_jittered() -> None:
    policy = RetryPolicy(first_delay_s=1.0, max_delay_s=60.0)
    rng = random.Random(7)
    for elapsed, base in [
        (0.0, 1.0),
        (0.2, 1.0),
        (2.0, 2.0),
        (30.0, 30.0),
        (59.0, 59.0),
        (600.0, 60.0),
        (1e12, 60.0),
    ]:
        delays = [policy.delay_s(elapsed, None, rng) for _ in range(200)]
        assert min(delays) >= base / 2
        assert max(delays) <= base
        assert max(delays) - min(delays) > base / 4, "jittered, not constant"


def test_a_longer_retry_after_wins_and_a_shorter_one_does_not_hurry() -> None:
    policy = RetryPolicy(first_delay_s=1.0, max_delay_s=60.0)
    rng = random.Random(1)
    assert policy.delay_s(0.0, 30.0, rng) == 30.0
    assert 4.0 <= policy.delay_s(8.0, 0.5, rng) <= 8.0


def after(
    policy: RetryPolicy, now: datetime, retry_after_s: float | None = None
) -> tuple[DeliveryStatus, datetime | None]:
    return policy.after_failure(
        since=NOW, retryable=True, retry_after_s=retry_after_s, now=now, rng=random.Random(3)
    )


def test_failures_are_retried_until_the_window_closes() -> None:
    policy = RetryPolicy(window_s=3600, first_delay_s=1.0, max_delay_s=600)
    status, at = after(policy, NOW)
    assert status is DeliveryStatus.FAILING
    assert at is not None
    assert NOW + timedelta(seconds=0.5) <= at <= NOW + timedelta(seconds=1)
    assert after(policy, NOW + timedelta(seconds=3590)) == (DeliveryStatus.DEAD, None)


def test_a_retry_after_beyond_the_window_or_absurdly_long_is_the_end() -> None:
    policy = RetryPolicy(window_s=3600)
    assert after(policy, NOW, retry_after_s=7200) == (DeliveryStatus.DEAD, None)
    assert after(policy, NOW, retry_after_s=1e300) == (DeliveryStatus.DEAD, None)


def test_about_an_hour_of_default_retries_is_a_dozen_or_so_attempts() -> None:
    policy, rng = RetryPolicy(), random.Random(11)
    now, attempts = NOW, 0
    while True:
        attempts += 1
        status, at = policy.after_failure(
            since=NOW, retryable=True, retry_after_s=None, now=now, rng=rng
        )
        if at is None:
            break
        now = at
    assert status is DeliveryStatus.DEAD
    assert 10 <= attempts <= 30
    assert timedelta(minutes=45) <= now - NOW <= timedelta(hours=1)


def test_a_final_answer_is_dead_at_once() -> None:
    status, at = RetryPolicy().after_failure(
        since=NOW,
        retryable=False,
        retry_after_s=None,
        now=NOW,
        rng=random.Random(),
    )
    assert (status, at) == (DeliveryStatus.DEAD, None)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("Tue, 24 Nov 2026 12:00:30 GMT", 30.0),
        ("Tue, 24 Nov 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
        ("²", None),
        ("99999999999999", 99999999999999.0),
        ("Tue, 24 Nov 99999 12:00:30 GMT", None),
    ],
)
def test_retry_after_in_seconds_or_as_a_date(header: str | None, seconds: float | None) -> None:
    assert retry_after_s(header, NOW) == seconds
