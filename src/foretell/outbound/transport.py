"""An httpx transport that connects only to addresses its guard allows, pinned to the one checked.

The check when a URL is given is not enough: a name can resolve somewhere else by the time it is
used (DNS rebinding). So the connection itself resolves the name once, refuses it unless every
address passes the guard, and connects to exactly the address it checked. TLS still runs
against the name, so SNI and certificate checks are unchanged, and connections are pooled by
name as usual."""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable

import httpcore
import httpx
from httpcore import AnyIOBackend, AsyncNetworkBackend, AsyncNetworkStream

from foretell.outbound.addresses import Guard, IpAddress, resolve

# What the transport asks for a name's addresses: `resolve`, or a test's fake.
Resolver = Callable[[str, int], Awaitable[list[IpAddress]]]


class _PinnedBackend(AsyncNetworkBackend):
    def __init__(
        self, guard: Guard, resolver: Resolver, backend: AsyncNetworkBackend | None
    ) -> None:
        self._guard = guard
        self._resolve = resolver
        self._backend = backend or AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore calls it so)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"could not resolve {host}")
        for address in addresses:
            self._guard.check(host, host, address)  # AddressRefused passes through httpx
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
        raise httpcore.ConnectError("connections for a caller never use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """Connects to the address it resolved and `guard` passed; raises AddressRefused else.
    `resolver` and `backend` (what connects) are for tests to count what was asked of them."""

    def __init__(
        self,
        guard: Guard,
        *,
        max_connections: int,
        resolver: Resolver = resolve,
        backend: AsyncNetworkBackend | None = None,
    ) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend, so the pool it built is replaced by the same one
        # with ours; what it otherwise does with the pool (request mapping, errors) is kept.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            network_backend=_PinnedBackend(guard, resolver, backend),
        )
