"""Where a webhook may point: http(s) only, never at a cloud metadata or link-local address, and
at non-public addresses only when the server allows it.

Checked when the prediction is created, so a caller learns at once (400) rather than from a
delivery that never comes. A name can resolve differently later (DNS rebinding), so every
delivery resolves it again, checks what it got, and connects to exactly that address."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from foretell.errors import InvalidRequest

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Always refused: instance metadata services (AWS, GCP, Azure, … at 169.254.169.254; AWS's IPv6
# one at fd00:ec2::254; Alibaba's at 100.100.100.200) and the rest of link-local, where nothing
# a caller owns can listen.
_ALWAYS_REFUSED = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Lookups get threads of their own: on the loop's default executor a slow DNS server would
# hold up everything else that uses it.
_RESOLVER = ThreadPoolExecutor(8, thread_name_prefix="foretell-dns")


async def check_target(url: str, *, allow_private: bool) -> None:
    """Raise InvalidRequest naming the problem if `url` is not a place to send webhooks. A name
    that does not resolve now is accepted: a receiver's DNS can be briefly down."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidRequest(f"webhook: '{url}' is not an http(s) URL")
    host = parts.hostname
    if not host:
        raise InvalidRequest(f"webhook: '{url}' has no host")
    for address in await resolve(host, parts.port or (443 if parts.scheme == "https" else 80)):
        check_address(url, host, address, allow_private)


def check_address(url: str, host: str, address: IpAddress, allow_private: bool) -> None:
    """Raise InvalidRequest if `host` (of `url`), resolved to `address`, is off limits."""
    where = host if host == str(address) else f"{host} ({address})"
    # An IPv4 address written as IPv6 (::ffff:a.b.c.d, NAT64, 6to4) reaches the IPv4 host.
    address = _embedded_ipv4(address) or address
    if any(address in network for network in _ALWAYS_REFUSED):
        raise InvalidRequest(
            f"webhook: '{url}' points at {where}, a link-local or cloud metadata address; "
            "webhooks are never sent there"
        )
    if not allow_private and (not address.is_global or address.is_multicast):
        raise InvalidRequest(
            f"webhook: '{url}' points at {where}, a private or loopback address; the server "
            "sends webhooks there only when started with FORETELL_WEBHOOK_ALLOW_PRIVATE=true"
        )


def _embedded_ipv4(address: IpAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def resolve(host: str, port: int) -> list[IpAddress]:
    """The addresses `host` stands for (itself if it is one); empty if it does not resolve."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass  # a name: resolve it
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.run_in_executor(
            _RESOLVER, socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM
        )
    except OSError:
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
