"""Where a webhook may point: http(s) only, never at a cloud metadata or link-local address, and
at private or loopback addresses only when the server allows it. Checked when the prediction is
created, so a caller learns at once (400) rather than from a delivery that never comes; a name
can resolve differently later, so a delivery must check again before it connects."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from foretell.errors import InvalidRequest

# Always refused: instance metadata services (AWS, GCP, Azure, … at 169.254.169.254; AWS's IPv6
# one at fd00:ec2::254) and the rest of link-local, where nothing a caller owns can listen.
_ALWAYS_REFUSED = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


async def check_target(url: str, *, allow_private: bool) -> None:
    """Raise InvalidRequest naming the problem if `url` is not a place to send webhooks."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidRequest(f"webhook: '{url}' is not an http(s) URL")
    host = parts.hostname
    if not host:
        raise InvalidRequest(f"webhook: '{url}' has no host")
    for address in await _addresses(host, parts.port or (443 if parts.scheme == "https" else 80)):
        _check_address(url, host, address, allow_private)


def _check_address(url: str, host: str, address: IpAddress, allow_private: bool) -> None:
    where = host if host == str(address) else f"{host} ({address})"
    if any(address in network for network in _ALWAYS_REFUSED):
        raise InvalidRequest(
            f"webhook: '{url}' points at {where}, a link-local or cloud metadata address; "
            "webhooks are never sent there"
        )
    if not allow_private and (address.is_private or address.is_loopback or address.is_reserved):
        raise InvalidRequest(
            f"webhook: '{url}' points at {where}, a private or loopback address; the server "
            "sends webhooks there only when started with FORETELL_WEBHOOK_ALLOW_PRIVATE=true"
        )


async def _addresses(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass  # a name: resolve it, as the delivery will
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        # Not resolvable now (a receiver's DNS can be briefly down): accepted, and every
        # delivery checks the addresses it connects to again.
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
