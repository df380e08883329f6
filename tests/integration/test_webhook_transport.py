"""The delivery transport checks the address it actually connects to, not one looked up before."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from _receiver import Receiver

from foretell.webhooks.transport import GuardedTransport, RefusedAddress


async def post(url: str, *, allow_private: bool) -> httpx.Response:
    transport = GuardedTransport(allow_private=allow_private, max_connections=4)
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.post(url, content=b"{}")


def test_a_name_that_resolves_to_loopback_is_refused_at_connect_time() -> None:
    with Receiver().running() as receiver:
        url = f"http://localhost:{receiver.port}/hook"
        with pytest.raises(RefusedAddress, match="private or loopback"):
            asyncio.run(post(url, allow_private=False))
        assert receiver.received == [], "refused before any connection"
        assert asyncio.run(post(url, allow_private=True)).status_code == 204
    assert len(receiver.received) == 1


def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    with pytest.raises(httpx.ConnectError, match="could not resolve"):
        asyncio.run(post("http://no-such-host.invalid/hook", allow_private=True))
