"""Token buckets (a pure function of the clock) and what each scope lets a key do."""

from __future__ import annotations

import pytest

from foretell.auth.ratelimit import TokenBucket
from foretell.domain.access import ANONYMOUS_ADMIN, Principal, Scope


def test_a_full_bucket_serves_its_burst_then_says_how_long_until_the_next_token() -> None:
    bucket = TokenBucket.full(rate_per_s=2.0, burst=3, now=0.0)

    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.25) == pytest.approx(0.25), "half a token refilled meanwhile"
    assert bucket.take(0.5) == 0.0


def test_a_bucket_refills_no_further_than_its_burst() -> None:
    bucket = TokenBucket.full(rate_per_s=10.0, burst=2, now=0.0)
    bucket.take(0.0)

    # An hour idle: still only 2 at once.
    assert [bucket.take(3600.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert bucket.take(3600.0) > 0


@pytest.mark.parametrize(
    ("scope", "may"),
    [
        (Scope.READ, {Scope.READ}),
        (Scope.PREDICT, {Scope.READ, Scope.PREDICT}),
        (Scope.DEPLOY, {Scope.READ, Scope.PREDICT, Scope.DEPLOY}),
        (Scope.ADMIN, {Scope.READ, Scope.PREDICT, Scope.DEPLOY, Scope.ADMIN}),
    ],
)
def test_each_scope_includes_the_ones_before_it(scope: Scope, may: set[Scope]) -> None:
    caller = Principal("acme", scope, "key_1")

    assert {s for s in Scope if caller.can(s)} == may
    assert caller.admin is (scope is Scope.ADMIN)


def test_a_caller_owns_its_owners_things_and_an_admin_everyones() -> None:
    acme = Principal("acme", Scope.PREDICT, "key_1")
    root = Principal("root", Scope.ADMIN, "key_2")

    assert acme.owns("acme")
    assert not acme.owns("globex")
    assert not acme.owns(None)
    assert root.owns("globex")
    assert root.owns(None)
    assert ANONYMOUS_ADMIN.owns("anyone")
