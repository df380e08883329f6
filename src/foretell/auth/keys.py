"""KeyManager: make, list and revoke API keys, for the CLI and the admin API alike.

A key is `ft_<prefix>_<secret>`: 8 hex characters that identify it in listings, then 256 random
bits. Only the prefix and a SHA-256 digest of the whole key are stored; with that much
randomness a plain digest is as good as a slow password hash, and lets a request be checked
with one indexed lookup."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from foretell.domain.access import ApiKey, Scope
from foretell.errors import InvalidRequest, KeyNotFound
from foretell.store.keys import KeyStore

ADMIN_KEY_FILE = "admin-key"
BOOTSTRAP_LOCK = ".admin-key.lock"
_OWNER = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Bounds on a key's settings: past them its expiry overflows a datetime, its burst the
# database's 64-bit integer, and a Retry-After (up to 1/rate seconds) grows past any use.
MAX_LIFETIME_DAYS = 3650  # a key meant to outlive ten years may as well never expire
MAX_LIFETIME_S = MAX_LIFETIME_DAYS * 86400
MIN_RATE_PER_S = 0.001
MAX_RATE_PER_S = 1_000_000.0
MAX_BURST = 1_000_000
# The first admin key's owner, and so the owner of every prediction it makes: a read or predict
# key of this owner would see all of them.
ADMIN_OWNER = "admin"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: `key` is shown this once and never again."""

    key: str
    record: ApiKey


class KeyManager:
    def __init__(self, store: KeyStore, on_revoke: Callable[[str], None] = lambda _: None):
        self._store = store
        self._on_revoke = on_revoke  # lets a running server drop what it cached of the key

    async def create(
        self,
        *,
        owner: str,
        scope: Scope,
        name: str = "",
        expires_in: timedelta | None = None,
        rate_per_s: float | None = None,
        burst: int | None = None,
    ) -> NewKey:
        if not _OWNER.match(owner):
            raise InvalidRequest(
                f"owner: '{owner}' is not an owner name; use 1-64 lowercase letters, digits, "
                "'.', '_' or '-', starting with a letter or digit"
            )
        if problem := reserved_owner_problem(owner, scope):
            raise InvalidRequest(f"owner: {problem}")
        if len(name) > 128:
            raise InvalidRequest(f"name: {len(name)} characters, more than the limit of 128")
        if expires_in is not None:
            _check_lifetime(expires_in)
        if rate_per_s is not None and not MIN_RATE_PER_S <= rate_per_s <= MAX_RATE_PER_S:
            raise InvalidRequest(
                f"rate: {rate_per_s:g} requests/s is out of range; it must be from "
                f"{MIN_RATE_PER_S:g} to {MAX_RATE_PER_S:g}"
            )
        if burst is not None and not 1 <= burst <= MAX_BURST:
            raise InvalidRequest(
                f"burst: {burst} is out of range; it must be from 1 to {MAX_BURST}"
            )
        prefix = secrets.token_hex(4)
        key = f"ft_{prefix}_{secrets.token_urlsafe(32)}"
        now = datetime.now(UTC)
        record = ApiKey(
            id=f"key_{uuid.uuid4().hex[:16]}",
            prefix=f"ft_{prefix}",
            digest=digest(key),
            owner=owner,
            scope=scope,
            name=name,
            created_at=now,
            expires_at=now + expires_in if expires_in else None,
            rate_per_s=rate_per_s,
            burst=burst,
        )
        await self._store.insert(record)
        return NewKey(key, record)

    async def list(self) -> list[ApiKey]:
        return await self._store.all()

    async def revoke(self, id_or_prefix: str) -> ApiKey:
        """Revoke a key by id or prefix; revoking a revoked key changes nothing."""
        found = await self._store.find(id_or_prefix)
        if found is None:
            raise KeyNotFound(id_or_prefix)
        if found.revoked_at is None:
            found.revoked_at = datetime.now(UTC)
            await self._store.revoke(found.id, found.revoked_at)
        self._on_revoke(found.id)
        return found

    async def bootstrap(self, data_dir: Path) -> NewKey | None:
        """On a first start (no key at all): an admin key, written to `data_dir/admin-key`
        readable only by its owner, so the server is usable at once and closed to others."""
        # The processes of one data dir (`serve --workers N`) start together: one at a time
        # here, so the first makes the key and the others find it.
        lock = await asyncio.to_thread(_exclusive, data_dir / BOOTSTRAP_LOCK)
        try:
            if await self._store.count():
                return None
            made = await self.create(owner=ADMIN_OWNER, scope=Scope.ADMIN, name="first admin key")
            write_private(data_dir / ADMIN_KEY_FILE, made.key + "\n")
            return made
        finally:
            lock.close()  # and with it the lock


def reserved_owner_problem(owner: str, scope: Scope) -> str | None:
    """Why a key of `scope` may not have `owner` (the admin key's own), or None."""
    if owner == ADMIN_OWNER and scope is not Scope.ADMIN:
        return (
            f"'{ADMIN_OWNER}' is reserved for admin keys (it owns what the first admin key "
            f"made); give a {scope.value} key another owner"
        )
    return None


def _check_lifetime(expires_in: timedelta) -> None:
    if expires_in <= timedelta(0):
        raise InvalidRequest("expires: must be in the future")
    if expires_in > timedelta(seconds=MAX_LIFETIME_S):
        raise InvalidRequest(
            f"expires: {expires_in.days} days is more than the limit of {MAX_LIFETIME_DAYS} "
            "days; leave it out for a key that never expires"
        )


def _exclusive(path: Path) -> IO[str]:
    """`path` opened and locked (flock) against every other process; close it to unlock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    file = open(path, "a")  # noqa: SIM115 (the caller closes it)
    fcntl.flock(file.fileno(), fcntl.LOCK_EX)
    return file


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
