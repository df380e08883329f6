"""Signing secrets: created private, verified by the standard verifier, rotated with a grace."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from foretell.webhooks import SigningKeys
from foretell.webhooks.signing import SECRETS_FILE

BODY = '{"id": "p1", "status": "succeeded"}'


def headers(keys: SigningKeys, now: datetime | None = None) -> dict[str, str]:
    return keys.sign("msg_1", BODY, now or datetime.now(UTC))


def test_the_secret_is_created_once_readable_only_by_its_owner(tmp_path: Path) -> None:
    keys = SigningKeys.in_dir(tmp_path / "data")
    mode = stat.S_IMODE((tmp_path / "data" / SECRETS_FILE).stat().st_mode)
    assert mode == 0o600
    assert keys.current().value.startswith("whsec_")
    assert SigningKeys.in_dir(tmp_path / "data").current() == keys.current()


def test_a_signature_verifies_and_a_changed_body_or_id_does_not(tmp_path: Path) -> None:
    keys = SigningKeys.in_dir(tmp_path)
    signed = headers(keys)
    verifier = Webhook(keys.current().value)
    assert verifier.verify(BODY, signed) == {"id": "p1", "status": "succeeded"}
    with pytest.raises(WebhookVerificationError):
        verifier.verify(BODY.replace("p1", "p2"), signed)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(BODY, {**signed, "webhook-id": "msg_2"})


def test_after_a_rotation_both_secrets_sign_until_the_grace_ends(tmp_path: Path) -> None:
    keys = SigningKeys.in_dir(tmp_path)
    old = keys.current()
    now = datetime.now(UTC)
    new = keys.rotate(timedelta(hours=1), now=now)
    assert keys.current() == new != old
    during = headers(keys, now + timedelta(minutes=59))
    assert len(during["webhook-signature"].split(" ")) == 2
    after = headers(keys, now + timedelta(minutes=61))
    assert len(after["webhook-signature"].split(" ")) == 1
    # Verify at the signing time: the verifier refuses timestamps more than 5 minutes off.
    fresh = headers(keys)
    for secret in (old, new):
        Webhook(secret.value).verify(BODY, fresh)


def test_a_rotation_by_another_process_is_seen_without_a_restart(tmp_path: Path) -> None:
    server = SigningKeys.in_dir(tmp_path)
    before = server.current()
    rotated = SigningKeys.in_dir(tmp_path).rotate(timedelta(0))
    assert server.current() == rotated != before
    signed = headers(server)
    Webhook(rotated.value).verify(BODY, signed)
    with pytest.raises(WebhookVerificationError):
        Webhook(before.value).verify(BODY, signed)


def test_a_second_rotation_drops_secrets_whose_grace_is_over(tmp_path: Path) -> None:
    keys = SigningKeys.in_dir(tmp_path)
    now = datetime.now(UTC)
    keys.rotate(timedelta(minutes=5), now=now)
    keys.rotate(timedelta(hours=1), now=now + timedelta(minutes=10))
    assert len(keys.secrets()) == 2


def test_concurrent_rotations_keep_every_new_secret(tmp_path: Path) -> None:
    SigningKeys.in_dir(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        made = list(
            pool.map(
                lambda _: SigningKeys(tmp_path / SECRETS_FILE).rotate(timedelta(hours=1)), range(8)
            )
        )
    on_file = {s.value for s in SigningKeys(tmp_path / SECRETS_FILE).secrets()}
    assert {s.value for s in made} <= on_file
    assert len(on_file) == 9
