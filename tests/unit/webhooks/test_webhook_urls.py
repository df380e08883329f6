"""A webhook URL no delivery could use (too long, or refused by httpx) is refused when given:
a 100,000-character one was accepted and then failed every delivery with InvalidURL."""

from __future__ import annotations

import asyncio

import pytest

from foretell.errors import InvalidRequest
from foretell.webhooks import check_target
from foretell.webhooks.targets import url_problem

BASE = "https://93.184.215.14/"  # a public address: only the length decides


def test_a_url_at_the_limit_passes() -> None:
    url = BASE + "a" * (2048 - len(BASE))
    assert url_problem(url) is None
    asyncio.run(check_target(url, allow_private=False))


@pytest.mark.parametrize("length", [2049, 65_537, 100_000])
def test_a_longer_url_is_refused_naming_its_length_and_the_limit(length: int) -> None:
    url = BASE + "a" * (length - len(BASE))
    with pytest.raises(InvalidRequest) as caught:
        asyncio.run(check_target(url, allow_private=False))
    message = caught.value.message
    assert message == f"webhook: the URL has {length} characters, more than the limit of 2048"


def test_a_url_httpx_refuses_is_refused() -> None:
    with pytest.raises(
        InvalidRequest, match=r"webhook: the URL cannot be sent to: .*non-printable"
    ):
        asyncio.run(check_target(BASE + "a\tb", allow_private=False))


@pytest.mark.parametrize("host", ["a" * 64 + ".example.com", "a..example.com"])
def test_a_host_name_dns_cannot_be_asked_for_is_refused(host: str) -> None:
    """Its lookup raised UnicodeError (a 500), not OSError as an unknown name does."""
    with pytest.raises(
        InvalidRequest, match=r"cannot be looked up: a label of it is empty or over"
    ):
        asyncio.run(check_target(f"https://{host}/hook", allow_private=False))
