"""Who is asking: an API key's owner and scopes, and what they let it see and do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Scope(StrEnum):
    """What a key may do. Each scope includes the ones before it: predict reads, admin all."""

    READ = "read"  # models, and the predictions its owner made
    PREDICT = "predict"  # create and cancel predictions too
    DEPLOY = "deploy"  # push its owner's models, load, unload and scale them too
    ADMIN = "admin"  # everything, every owner's, and the keys themselves

    def includes(self, other: Scope) -> bool:
        return _RANK[self] >= _RANK[other]


_RANK = {Scope.READ: 0, Scope.PREDICT: 1, Scope.DEPLOY: 2, Scope.ADMIN: 3}


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a request. `key_id` is None when the server runs without auth."""

    owner: str
    scope: Scope
    key_id: str | None = None

    @property
    def admin(self) -> bool:
        return self.scope is Scope.ADMIN

    def can(self, scope: Scope) -> bool:
        return self.scope.includes(scope)

    def owns(self, owner: str | None) -> bool:
        """Whether something of `owner` is this caller's to see: its own, or anything if admin."""
        return self.admin or owner == self.owner


# Without auth every request acts as this: an admin that owns nothing in particular.
ANONYMOUS_ADMIN = Principal(owner="", scope=Scope.ADMIN)
# With anonymous access on, a request without a key acts as this on the routes that take it:
# it owns nothing, so it sees and runs only public models, and creates no record it could read.
ANONYMOUS = Principal(owner="", scope=Scope.PREDICT)


@dataclass(slots=True)
class ApiKey:
    """A stored key: never the key itself, only its public prefix and a digest of the rest."""

    id: str
    prefix: str  # shown in listings, so a key can be recognised without being revealed
    digest: str
    owner: str
    scope: Scope
    name: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    rate_per_s: float | None = None  # sustained requests per second; None: the server default
    burst: int | None = None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)
