"""The server's webhook signing secrets (Standard Webhooks), kept in a 0600 file in the data dir.

The newest secret signs every delivery; `rotate` makes a new one and lets the previous one keep
signing alongside it for a grace period, so receivers can switch over without dropping a single
event (a Standard Webhooks verifier accepts a message when any of its signatures matches). The
server re-reads the file when it changes, so `foretell webhooks secret --rotate` takes effect on a
running server.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from standardwebhooks import Webhook

log = logging.getLogger(__name__)

SECRETS_FILE = "webhook-secrets.json"
_PREFIX = "whsec_"


@dataclass(frozen=True, slots=True)
class Secret:
    value: str  # whsec_ + base64 of 32 random bytes, as Standard Webhooks libraries expect
    created_at: datetime
    retires_at: datetime | None = None  # None: the current secret

    def active(self, now: datetime) -> bool:
        return self.retires_at is None or now < self.retires_at


def new_secret(now: datetime) -> Secret:
    return Secret(_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode(), now)


class SigningKeys:
    """The secrets file: read on first use and whenever it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._secrets: list[Secret] = []
        self._signers: list[tuple[Secret, Webhook]] = []

    @classmethod
    def in_dir(cls, data_dir: Path) -> SigningKeys:
        """The secrets of the server using `data_dir`, created (mode 0600) if there are none."""
        keys = cls(data_dir / SECRETS_FILE)
        if not keys.path.exists():
            # Exclusive: of a server and a CLI starting together, one secret wins, for both.
            keys._write([new_secret(datetime.now(UTC))], replace=False)
        mode = stat.S_IMODE(keys.path.stat().st_mode)
        if mode & 0o077:
            log.warning("%s is readable by others (mode %o); chmod 600 it", keys.path, mode)
        return keys

    def current(self) -> Secret:
        """The secret that signs new deliveries (the newest)."""
        return self._load()[0]

    def secrets(self) -> list[Secret]:
        """Every secret still on file, newest first, retired ones included until cleaned up."""
        return list(self._load())

    def rotate(self, grace: timedelta, now: datetime | None = None) -> Secret:
        """A new current secret; the old ones keep signing for `grace` (and no longer if they
        were already retiring sooner). Secrets past their grace are dropped from the file."""
        now = now or datetime.now(UTC)
        fresh = new_secret(now)
        with self._locked():  # two rotations at once must not lose one of them
            kept = []
            for old in self._load():
                retires = (
                    now + grace if old.retires_at is None else min(old.retires_at, now + grace)
                )
                if now < retires:
                    kept.append(Secret(old.value, old.created_at, retires))
            self._write([fresh, *kept])
        return fresh

    def sign(self, msg_id: str, body: str, now: datetime) -> dict[str, str]:
        """The Standard Webhooks headers for one delivery: one signature per active secret."""
        self._load()
        signatures = " ".join(
            signer.sign(msg_id, now, body) for secret, signer in self._signers if secret.active(now)
        )
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
        }

    def _load(self) -> list[Secret]:
        stat = self.path.stat()
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # a replace is a new inode
        if stamp != self._stamp:
            document = orjson.loads(self.path.read_bytes())
            loaded = [_secret(entry) for entry in document["secrets"]]
            if not loaded:
                raise ValueError(f"{self.path} holds no webhook signing secret")
            self._secrets, self._stamp = loaded, stamp
            self._signers = [(s, Webhook(s.value)) for s in loaded]
        return self._secrets

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _write(self, entries: list[Secret], *, replace: bool = True) -> None:
        """Write the file atomically, never readable by anyone but the owner; without
        `replace`, only if there is none yet."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {"secrets": [_entry(s) for s in entries]}
        temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(temporary, self.path)
            return
        try:
            os.link(temporary, self.path)
        except FileExistsError:
            pass  # another process made it first: theirs is the secret
        finally:
            temporary.unlink()


def _entry(s: Secret) -> dict[str, Any]:
    return {"secret": s.value, "created_at": s.created_at, "retires_at": s.retires_at}


def _secret(entry: dict[str, Any]) -> Secret:
    retires = entry.get("retires_at")
    return Secret(
        entry["secret"],
        datetime.fromisoformat(entry["created_at"]),
        None if retires is None else datetime.fromisoformat(retires),
    )
