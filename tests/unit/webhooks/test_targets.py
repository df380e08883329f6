"""Where a webhook may point: http(s), never metadata or link-local, private only if allowed."""

from __future__ import annotations

import asyncio

import pytest

from foretell.errors import InvalidRequest
from foretell.webhooks import check_target


def check(url: str, *, allow_private: bool = False) -> None:
    asyncio.run(check_target(url, allow_private=allow_private))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.10.1:8080/hook",
        "http://[fd00:ec2::254]/hook",
        "http://[fe80::1]/hook",
    ],
)
def test_metadata_and_link_local_addresses_are_always_refused(url: str) -> None:
    with pytest.raises(InvalidRequest, match="link-local or cloud metadata address"):
        check(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9000/hook", "http://10.1.2.3/hook", "http://[::1]/x", "http://localhost/"],
)
def test_private_and_loopback_addresses_need_the_setting(url: str) -> None:
    with pytest.raises(InvalidRequest, match="FORETELL_WEBHOOK_ALLOW_PRIVATE=true"):
        check(url)
    check(url, allow_private=True)


def test_the_message_names_the_url_and_what_the_name_resolved_to() -> None:
    with pytest.raises(InvalidRequest) as caught:
        check("http://localhost:9/hook")
    assert "'http://localhost:9/hook' points at localhost (" in caught.value.message


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://a/"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(InvalidRequest, match="is not an http\\(s\\) URL"):
        check(url)


def test_a_public_address_is_accepted() -> None:
    check("https://93.184.215.14/hook")
    check("http://[2606:4700::6810:84e5]:8443/hook")


def test_a_name_that_does_not_resolve_now_is_accepted_for_delivery_to_check_again() -> None:
    check("https://no-such-host.invalid/hook")


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:169.254.169.254]/",  # IPv4-mapped
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
        "http://100.100.100.200/latest/meta-data/",  # Alibaba Cloud's metadata service
    ],
)
def test_metadata_addresses_in_disguise_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest, match="link-local or cloud metadata address"):
        check(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    ["http://[::ffff:127.0.0.1]/", "http://100.64.0.1/", "http://0.0.0.0/", "http://224.0.1.1/"],
)
def test_non_public_addresses_in_any_form_need_the_setting(url: str) -> None:
    with pytest.raises(InvalidRequest, match="FORETELL_WEBHOOK_ALLOW_PRIVATE=true"):
        check(url)
