"""The outbound guard speaks for no one use: its refusals name the URL, the address and the
setting of the use that built it, and the pinned transport connects to nothing it refused."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address

import httpx
import pytest

from foretell.outbound.addresses import AddressRefused, Guard, IpAddress
from foretell.outbound.transport import PinnedTransport

GUARD = Guard(allow_private=False, setting="FORETELL_FETCH_ALLOW_PRIVATE")


def test_a_metadata_address_is_refused_whatever_the_setting() -> None:
    with pytest.raises(AddressRefused) as caught:
        Guard(True, "X").check("http://169.254.169.254/", "169.254.169.254", ip("169.254.169.254"))
    assert caught.value.always
    assert caught.value.message == (
        "'http://169.254.169.254/' points at 169.254.169.254, a link-local or cloud metadata "
        "address; the server never connects there"
    )


def test_a_private_address_names_the_guards_setting() -> None:
    with pytest.raises(AddressRefused) as caught:
        GUARD.check("http://db.internal/x", "db.internal", ip("10.0.0.5"))
    assert not caught.value.always
    assert caught.value.message == (
        "'http://db.internal/x' points at db.internal (10.0.0.5), a private or loopback "
        "address; the server connects there only when started with "
        "FORETELL_FETCH_ALLOW_PRIVATE=true"
    )
    Guard(True, "X").check("http://db.internal/x", "db.internal", ip("10.0.0.5"))


def test_no_message_speaks_of_webhooks() -> None:
    for guard, address in ((GUARD, "127.0.0.1"), (Guard(True, "X"), "169.254.169.254")):
        with pytest.raises(AddressRefused) as caught:
            guard.check("http://h/", "h", ip(address))
        assert "webhook" not in caught.value.message


def test_the_transport_resolves_once_and_refuses_before_connecting() -> None:
    """A resolver that answers a metadata address: refused, and no connection is attempted
    (the transport would connect to the address it resolved, which is unreachable here)."""
    asked: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[IpAddress]:
        asked.append((host, port))
        return [ip("169.254.169.254")]

    async def send() -> None:
        async with PinnedTransport(GUARD, max_connections=1, resolver=resolver) as transport:
            await transport.handle_async_request(httpx.Request("GET", "http://files.example/x"))

    with pytest.raises(AddressRefused, match="link-local or cloud metadata"):
        asyncio.run(send())
    assert asked == [("files.example", 80)]


def ip(text: str) -> IpAddress:
    return ip_address(text)
