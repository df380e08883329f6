"""IPv6 forms that embed an IPv4 address are judged by the IPv4 address they reach, at creation
and at connect time alike: `[::a9fe:a9fe]` is the metadata service, not a public address."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address, IPv6Address, ip_address

import httpx
import pytest

from foretell.errors import InvalidRequest
from foretell.webhooks import check_target
from foretell.webhooks.targets import reached_addresses
from foretell.webhooks.transport import GuardedTransport, RefusedAddress

METADATA = IPv4Address("169.254.169.254")

# (IPv6 address, the IPv4 addresses a packet to it reaches)
FORMS = [
    pytest.param("::ffff:169.254.169.254", ["169.254.169.254"], id="mapped"),
    pytest.param("::a9fe:a9fe", ["169.254.169.254"], id="compatible"),
    pytest.param("::127.0.0.1", ["127.0.0.1"], id="compatible-loopback"),
    pytest.param("::ffff:0:a9fe:a9fe", ["169.254.169.254"], id="translated"),
    pytest.param("2002:a9fe:a9fe::1", ["169.254.169.254"], id="6to4"),
    pytest.param("64:ff9b::a9fe:a9fe", ["169.254.169.254"], id="nat64"),
    pytest.param("64:ff9b::127.0.0.1", ["127.0.0.1"], id="nat64-loopback"),
    # RFC 4380's example: server 65.54.227.120 in bits 32-63, client 192.0.2.45 inverted.
    pytest.param(
        "2001:0:4136:e378:8000:63bf:3fff:fdd2", ["65.54.227.120", "192.0.2.45"], id="teredo"
    ),
    pytest.param("2001:0:808:808::5601:5601", ["8.8.8.8", "169.254.169.254"], id="teredo-client"),
    pytest.param("2001:0:a9fe:a9fe::f7f7:f7f7", ["169.254.169.254", "8.8.8.8"], id="teredo-server"),
]

# Local-use NAT64 (64:ff9b:1::/48) with 169.254.169.254 at each RFC 6052 prefix length.
NAT64_LOCAL = [
    pytest.param("64:ff9b:1:a9fe:a9:fe00::", id="/48"),
    pytest.param("64:ff9b:1:a9:fe:a9fe::", id="/56"),
    pytest.param("64:ff9b:1:0:a9:fea9:fe00:0", id="/64"),
    pytest.param("64:ff9b:1::a9fe:a9fe", id="/96"),
]

# Forms that embed nothing, or that are IPv6's own: judged as themselves.
PLAIN = [
    pytest.param("::1", id="loopback"),
    pytest.param("::", id="unspecified"),
    pytest.param("2606:4700::6810:84e5", id="public"),
    pytest.param("169.254.169.254", id="ipv4"),
]


def check(url: str, *, allow_private: bool = False) -> None:
    asyncio.run(check_target(url, allow_private=allow_private))


@pytest.mark.parametrize(("address", "reached"), FORMS)
def test_each_form_reaches_the_ipv4_address_it_embeds(address: str, reached: list[str]) -> None:
    assert reached_addresses(IPv6Address(address)) == tuple(map(IPv4Address, reached))


@pytest.mark.parametrize("address", NAT64_LOCAL)
def test_local_use_nat64_is_checked_at_every_prefix_length(address: str) -> None:
    assert METADATA in reached_addresses(IPv6Address(address))


@pytest.mark.parametrize("address", PLAIN)
def test_an_address_embedding_nothing_is_itself(address: str) -> None:
    parsed = ip_address(address)
    assert reached_addresses(parsed) == (parsed,)


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:169.254.169.254",
        "::a9fe:a9fe",
        "::ffff:0:a9fe:a9fe",
        "2002:a9fe:a9fe::1",
        "64:ff9b::a9fe:a9fe",
        "2001:0:808:808::5601:5601",
        "2001:0:a9fe:a9fe::f7f7:f7f7",
        "64:ff9b:1:a9fe:a9:fe00::",
        "64:ff9b:1:a9:fe:a9fe::",
        "64:ff9b:1:0:a9:fea9:fe00:0",
        "64:ff9b:1::a9fe:a9fe",
    ],
)
def test_the_metadata_service_in_any_form_is_always_refused(address: str) -> None:
    with pytest.raises(InvalidRequest, match="link-local or cloud metadata") as caught:
        check(f"http://[{address}]/hook", allow_private=True)
    assert "which reaches" in caught.value.message
    assert "169.254.169.254" in caught.value.message


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",
        "::a00:1",  # 10.0.0.1
        "::ffff:0:7f00:1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # a client at 192.0.2.45, a documentation address
        "64:ff9b:1::808:808",  # local-use: 8.8.8.8 at /96, but 0.0.0.0 at /48
    ],
)
def test_a_private_ipv4_in_any_form_needs_the_setting(address: str) -> None:
    with pytest.raises(InvalidRequest, match="FORETELL_WEBHOOK_ALLOW_PRIVATE=true"):
        check(f"http://[{address}]/hook")
    check(f"http://[{address}]/hook", allow_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:808:808",
        "::808:808",
        "64:ff9b::808:808",
        "2002:808:808::1",
        "2001:0:808:808::f7f7:f7f7",
    ],
)
def test_a_public_ipv4_in_any_form_is_accepted(address: str) -> None:
    check(f"http://[{address}]/hook")


@pytest.mark.parametrize("address", ["::a9fe:a9fe", "::127.0.0.1", "2001:0:808:808::5601:5601"])
def test_the_connection_itself_refuses_them_too(address: str) -> None:
    """The transport checks the address it is about to connect to with the same rule."""

    async def send() -> None:
        async with GuardedTransport(allow_private=False, max_connections=1) as transport:
            request = httpx.Request("POST", f"http://[{address}]/hook")
            await transport.handle_async_request(request)

    with pytest.raises(RefusedAddress, match="which reaches"):
        asyncio.run(send())
