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


def test_a_host_name_past_dns_253_characters_is_refused() -> None:
    """Five 63-character labels and 'com' (323 characters): each label passes, the name does
    not, and every delivery failed to resolve it for an hour."""
    host = ("a" * 63 + ".") * 5 + "com"
    with pytest.raises(InvalidRequest) as caught:
        asyncio.run(check_target(f"https://{host}/", allow_private=False))
    assert "has 323 characters, more than DNS's limit of 253" in caught.value.message


def test_a_host_name_of_253_characters_passes() -> None:
    host = ("a" * 62 + ".") * 4 + "a"  # four 62-character labels, their dots and one more
    assert len(host) == 253
    assert url_problem(f"https://{host}/") is None
    assert url_problem(f"https://{host}./") is None  # a final dot is not part of the limit


@pytest.mark.parametrize("port", [0, 65536, 99_999_999])
def test_a_port_outside_1_to_65535_is_refused(port: int) -> None:
    with pytest.raises(InvalidRequest) as caught:
        asyncio.run(check_target(f"http://example.com:{port}/", allow_private=False))
    assert caught.value.message == (
        f"webhook: the URL's port is {port}; a receiver listens on a port from 1 to 65535"
    )


def test_ports_1_and_65535_pass() -> None:
    assert url_problem("http://example.com:1/") is None
    assert url_problem("http://example.com:65535/") is None
