"""A key store that cannot be read answers StoreUnavailable (503), never Unauthenticated (401):
a good key is not refused because the database is restarting, nor is the outage remembered."""

from __future__ import annotations

import pytest
from auth_fakes import FakeClock, FakeKeyStore

from foretell.auth import Authenticator, KeyManager
from foretell.auth.authenticator import FRESH_S
from foretell.domain.access import ApiKey, Scope
from foretell.errors import StoreUnavailable, Unauthenticated

pytestmark = pytest.mark.anyio


class FlakyKeyStore(FakeKeyStore):
    """A FakeKeyStore whose reads fail as the real one does while its database is down."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def by_digest(self, digest: str) -> ApiKey | None:
        if self.down:
            self.reads += 1
            raise StoreUnavailable("postgresql://foretell@db:5432/records", "Connection refused")
        return await super().by_digest(digest)


async def test_a_key_read_while_the_store_is_down_is_unavailable_not_refused() -> None:
    store, clock = FlakyKeyStore(), FakeClock()
    auth = Authenticator(store, clock=clock.monotonic, wall=clock.now)
    made = await KeyManager(store).create(owner="acme", scope=Scope.PREDICT)
    assert (await auth.principal(made.key)).owner == "acme"

    store.down = True
    assert (await auth.principal(made.key)).owner == "acme"  # still fresh: not read again
    clock.advance(FRESH_S + 0.1)
    with pytest.raises(StoreUnavailable):
        await auth.principal(made.key)
    with pytest.raises(StoreUnavailable):  # the failure is not cached as "no such key"
        await auth.principal(made.key)
    assert store.reads == 3

    store.down = False
    assert (await auth.principal(made.key)).owner == "acme"
    with pytest.raises(Unauthenticated):
        await auth.principal("ft_not-a-key")
