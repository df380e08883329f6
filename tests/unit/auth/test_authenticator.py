"""Authenticator: a key → its principal, with revocation, expiry, the cache's freshness and
rate limits worked out on injected clocks (no sleeps)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from auth_fakes import T0, FakeClock, FakeKeyStore

from foretell.auth import Authenticator, KeyManager
from foretell.auth.authenticator import FRESH_S, TOUCH_EVERY_S
from foretell.domain.access import Principal, Scope
from foretell.errors import RateLimited, Unauthenticated

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> FakeKeyStore:
    return FakeKeyStore()


@pytest.fixture
def auth(store: FakeKeyStore, clock: FakeClock) -> Authenticator:
    return Authenticator(store, clock=clock.monotonic, wall=clock.now)


async def make(store: FakeKeyStore, owner: str = "acme", **options: object) -> tuple[str, str]:
    """A key made as the API makes it: (the key, its id)."""
    made = await KeyManager(store).create(owner=owner, scope=Scope.PREDICT, **options)
    return made.key, made.record.id


async def test_a_key_is_its_owner_scope_and_id(auth: Authenticator, store: FakeKeyStore) -> None:
    key, key_id = await make(store)

    assert await auth.principal(key) == Principal("acme", Scope.PREDICT, key_id)


@pytest.mark.parametrize("wrong", ["ft_0", "ft_00000000_" + "0" * 43, ""])
async def test_an_unknown_key_is_refused_without_saying_more(
    auth: Authenticator, store: FakeKeyStore, wrong: str
) -> None:
    await make(store)

    with pytest.raises(Unauthenticated, match=r"^invalid API key$"):
        await auth.principal(wrong)


async def test_a_key_is_accepted_until_the_instant_it_expires(
    auth: Authenticator, store: FakeKeyStore, clock: FakeClock
) -> None:
    key, key_id = await make(store, expires_in=timedelta(seconds=30))
    # KeyManager stamps created_at from the real clock; expiry is read against `wall`.
    expires_at = store.keys[key_id].expires_at = T0 + timedelta(seconds=30)

    clock.advance(29.999)
    assert (await auth.principal(key)).key_id == key_id
    clock.advance(0.001)
    with pytest.raises(Unauthenticated) as refused:
        await auth.principal(key)

    assert str(refused.value) == (
        f"API key {key_id} expired at {expires_at.isoformat(timespec='seconds')}"
    )


async def test_a_revocation_elsewhere_shows_once_the_cached_state_is_older_than_fresh_s(
    auth: Authenticator, store: FakeKeyStore, clock: FakeClock
) -> None:
    key, key_id = await make(store)
    assert await auth.principal(key)  # read and cached
    store.revoke_elsewhere(key_id, T0)  # `foretell keys revoke` against the same database

    clock.advance(FRESH_S)
    assert await auth.principal(key), "within FRESH_S the cached state is trusted"
    assert store.reads == 1
    clock.advance(0.001)
    with pytest.raises(Unauthenticated, match=f"^API key {key_id} was revoked$"):
        await auth.principal(key)
    assert store.reads == 2


async def test_a_revocation_through_this_server_shows_at_once(
    auth: Authenticator, store: FakeKeyStore
) -> None:
    manager = KeyManager(store, on_revoke=auth.forget)
    key, key_id = await make(store)
    assert await auth.principal(key)

    await manager.revoke(key_id)  # the clock has not moved: only `forget` can show it

    with pytest.raises(Unauthenticated, match="was revoked"):
        await auth.principal(key)


async def test_an_unknown_key_is_cached_too_then_read_again(
    auth: Authenticator, store: FakeKeyStore, clock: FakeClock
) -> None:
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await auth.principal("ft_nope")
    assert store.reads == 1
    clock.advance(FRESH_S + 0.001)
    with pytest.raises(Unauthenticated):
        await auth.principal("ft_nope")
    assert store.reads == 2


async def test_a_keys_own_rate_refuses_past_its_burst_saying_when_to_retry(
    auth: Authenticator, store: FakeKeyStore, clock: FakeClock
) -> None:
    key, key_id = await make(store, rate_per_s=0.5, burst=2)
    await auth.principal(key)
    await auth.principal(key)

    with pytest.raises(RateLimited) as refused:
        await auth.principal(key)

    assert refused.value.retry_after_s == 2  # one token at 0.5/s
    assert f"API key {key_id} is over its rate limit of 0.5 requests/s (bursts of 2)" in str(
        refused.value
    )
    clock.advance(1.999)
    with pytest.raises(RateLimited):
        await auth.principal(key)
    clock.advance(0.001)
    assert await auth.principal(key), "a token has refilled"


async def test_the_servers_default_rate_applies_to_keys_without_their_own(
    store: FakeKeyStore, clock: FakeClock
) -> None:
    auth = Authenticator(store, rate_per_s=1.0, burst=1, clock=clock.monotonic, wall=clock.now)
    plain, _ = await make(store)
    own, _ = await make(store, rate_per_s=100.0, burst=3)

    await auth.principal(plain)
    with pytest.raises(RateLimited):
        await auth.principal(plain)
    for _ in range(3):
        await auth.principal(own)


async def test_rate_buckets_are_per_key(auth: Authenticator, store: FakeKeyStore) -> None:
    first, _ = await make(store, rate_per_s=1.0, burst=1)
    second, _ = await make(store, rate_per_s=1.0, burst=1)

    await auth.principal(first)
    await auth.principal(second)
    with pytest.raises(RateLimited):
        await auth.principal(first)


async def test_without_a_rate_there_is_no_limit(auth: Authenticator, store: FakeKeyStore) -> None:
    key, _ = await make(store)
    for _ in range(1000):
        await auth.principal(key)


async def test_last_use_is_written_once_a_minute_not_per_request(
    auth: Authenticator, store: FakeKeyStore, clock: FakeClock
) -> None:
    key, key_id = await make(store)
    for _ in range(5):
        await auth.principal(key)
    clock.advance(TOUCH_EVERY_S - 1)
    await auth.principal(key)
    clock.advance(1)
    await auth.principal(key)

    assert store.touched == [(key_id, T0), (key_id, T0 + timedelta(seconds=TOUCH_EVERY_S))]
