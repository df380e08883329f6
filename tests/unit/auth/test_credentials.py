"""The key a request carries, in each of the seeds' header forms, and refusals that never echo
what they were given."""

from __future__ import annotations

import pytest

from foretell.auth import credential
from foretell.errors import Unauthenticated

KEY = "ft_0123abcd_secretsecret"


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {KEY}"},
        {"authorization": f"bearer {KEY}"},
        {"authorization": f"Token {KEY}"},
        {"authorization": f"Api-Key {KEY}"},
        {"authorization": f"  Bearer   {KEY}  "},
        {"x-api-key": KEY},
        {"x-api-key": f" {KEY} "},
    ],
)
def test_every_form_gives_the_key(headers: dict[str, str]) -> None:
    assert credential(headers) == KEY


def test_authorization_wins_over_x_api_key() -> None:
    assert credential({"authorization": f"Token {KEY}", "x-api-key": "other"}) == KEY


@pytest.mark.parametrize(
    ("headers", "said"),
    [
        ({}, "no API key; send one as"),
        ({"x-api-key": "  "}, "no API key; send one as"),
        ({"authorization": f"Basic {KEY}"}, "scheme is not one foretell accepts (Basic)"),
        ({"authorization": KEY}, "scheme is not one foretell accepts (that scheme)"),
        ({"authorization": "Bearer"}, "has no key after 'Bearer'"),
        ({"authorization": f"Bearer {KEY} {KEY}"}, "(or more than one word)"),
    ],
)
def test_a_missing_or_mangled_credential_names_the_forms_never_the_key(
    headers: dict[str, str], said: str
) -> None:
    with pytest.raises(Unauthenticated) as refused:
        credential(headers)

    message = str(refused.value)
    assert said in message
    assert "Authorization: Bearer <key>" in message
    assert "X-API-Key: <key>" in message
    assert KEY not in message
    assert "secret" not in message
