"""KeyManager: what a key looks like, what is stored of it (never the key), revocation and the
first admin key."""

from __future__ import annotations

import hashlib
import stat
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import pytest
from auth_fakes import FakeKeyStore

from foretell.auth import KeyManager
from foretell.auth.keys import ADMIN_KEY_FILE, digest
from foretell.domain.access import Scope
from foretell.errors import InvalidRequest, KeyNotFound

pytestmark = pytest.mark.anyio


async def test_a_key_is_ft_prefix_secret_and_only_its_prefix_and_digest_are_stored() -> None:
    store = FakeKeyStore()
    made = await KeyManager(store).create(owner="acme", scope=Scope.READ, name="ci")

    _, prefix, secret = made.key.split("_", 2)
    assert len(prefix) == 8
    int(prefix, 16)  # hex
    assert len(secret) >= 43  # 256 random bits, base64url
    (stored,) = store.keys.values()
    assert stored.prefix == f"ft_{prefix}"
    assert stored.digest == hashlib.sha256(made.key.encode()).hexdigest() == digest(made.key)
    assert (stored.owner, stored.scope, stored.name) == ("acme", Scope.READ, "ci")
    assert not any(secret in str(value) for value in asdict(stored).values()), "never the key"


async def test_every_key_is_new() -> None:
    manager = KeyManager(FakeKeyStore())
    made = [await manager.create(owner="acme", scope=Scope.READ) for _ in range(20)]

    assert len({m.key for m in made}) == len({m.record.id for m in made}) == 20


async def test_expiry_is_creation_plus_the_lifetime_and_none_without_one() -> None:
    manager = KeyManager(FakeKeyStore())
    lasting = await manager.create(owner="acme", scope=Scope.READ)
    brief = await manager.create(owner="acme", scope=Scope.READ, expires_in=timedelta(minutes=5))

    assert lasting.record.expires_at is None
    assert brief.record.expires_at == brief.record.created_at + timedelta(minutes=5)


@pytest.mark.parametrize("owner", ["Acme", "", "a b", "-acme", "x" * 65])
async def test_an_owner_that_is_not_an_owner_name_is_refused_naming_it(owner: str) -> None:
    store = FakeKeyStore()
    with pytest.raises(InvalidRequest, match=f"owner: '{owner}' is not an owner name"):
        await KeyManager(store).create(owner=owner, scope=Scope.READ)
    assert store.keys == {}


async def test_an_expiry_in_the_past_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="expires: must be in the future"):
        await KeyManager(FakeKeyStore()).create(
            owner="acme", scope=Scope.READ, expires_in=timedelta(0)
        )


async def test_revoke_by_id_or_prefix_stamps_it_once_and_tells_the_server() -> None:
    store = FakeKeyStore()
    told: list[str] = []
    manager = KeyManager(store, on_revoke=told.append)
    made = await manager.create(owner="acme", scope=Scope.READ)

    first = await manager.revoke(made.record.prefix)
    again = await manager.revoke(made.record.id)

    assert first.revoked_at is not None
    assert again.revoked_at == first.revoked_at, "revoking a revoked key changes nothing"
    assert store.keys[made.record.id].revoked_at == first.revoked_at
    assert told == [made.record.id, made.record.id]


async def test_revoking_an_unknown_key_is_key_not_found() -> None:
    with pytest.raises(KeyNotFound, match="ft_nope"):
        await KeyManager(FakeKeyStore()).revoke("ft_nope")


async def test_the_first_start_makes_an_admin_key_readable_only_by_its_owner(
    tmp_path: Path,
) -> None:
    store = FakeKeyStore()
    manager = KeyManager(store)

    made = await manager.bootstrap(tmp_path)

    assert made is not None
    assert made.record.scope is Scope.ADMIN
    path = tmp_path / ADMIN_KEY_FILE
    assert path.read_text() == made.key + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert await manager.bootstrap(tmp_path) is None, "only when there is no key at all"
    assert len(store.keys) == 1
