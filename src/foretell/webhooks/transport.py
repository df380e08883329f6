"""An httpx transport that connects only to addresses a webhook may reach.

The check at creation time is not enough: a name can resolve somewhere else by the time it is
used (DNS rebinding). So the connection itself resolves the name once, refuses it unless every
address passes `check_address`, and connects to exactly the address it checked. TLS still runs
against the name, so SNI and certificate checks are unchanged, and connections are pooled by
name as usual."""

from __future__ import annotations

import typing

import httpcore
import httpx
from httpcore import AnyIOBackend, AsyncNetworkBackend, AsyncNetworkStream

from foretell.errors import InvalidRequest
from foretell.webhooks.targets import check_address, resolve


class RefusedAddress(Exception):
    """The receiver's name now resolves to an address webhooks are never sent to."""


class _GuardedBackend(AsyncNetworkBackend):
    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._backend = AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore calls it so)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        addresses = await resolve(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"could not resolve {host}")
        try:
            for address in addresses:
                check_address(host, host, address, self._allow_private)
        except InvalidRequest as refused:
            raise RefusedAddress(refused.message) from None
        return await self._backend.connect_tcp(
            str(addresses[0]),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore calls it so)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are not sent over unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, *, allow_private: bool, max_connections: int) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend, so the pool it built is replaced by the same one
        # with ours; what it otherwise does with the pool (request mapping, errors) is kept.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            network_backend=_GuardedBackend(allow_private),
        )
