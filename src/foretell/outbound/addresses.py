"""Where a connection the server opens for a caller may go: http(s) URLs a client can send to,
never a cloud metadata or link-local address, and a non-public one only where a setting allows.

The caller's URL is checked when it is given, so its sender learns at once; a name can resolve
differently later (DNS rebinding), so the connection itself resolves it again, checks what it got
and connects to exactly that address (`outbound.transport`). Messages here name no use: each
caller puts its own field in front ("webhook: …", "input image: …")."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# A URL's length limit: what browsers and most senders take, far below httpx's own (65,536),
# past which every connection to it would fail with InvalidURL.
MAX_URL_CHARS = 2048
# DNS's limits on a name (RFC 1035 2.3.4): 253 characters in text form (without a final dot),
# 63 to a label; a longer name is never resolved, so every connection to it would fail.
MAX_DNS_NAME_CHARS = 253
MAX_DNS_LABEL_CHARS = 63
MAX_PORT = 65535

# Always refused: instance metadata services (AWS, GCP, Azure, … at 169.254.169.254; AWS's IPv6
# one at fd00:ec2::254; Alibaba's at 100.100.100.200) and the rest of link-local, where nothing
# a caller owns can listen.
_ALWAYS_REFUSED = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)
# IPv6 forms that carry an IPv4 address, where a packet to them ends up (besides IPv4-mapped
# ::ffff:a.b.c.d, 6to4 2002::/16 and Teredo 2001::/32, which `ipaddress` decodes itself).
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible ::a.b.c.d
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT's IPv4-translated ::ffff:0:a.b.c.d
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # NAT64's well-known prefix
# Local-use NAT64: its operator picks the prefix length (RFC 6052: /48, /56, /64 or /96 inside
# it), and with it where the IPv4 address sits, so every place it could sit is checked.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_NAT64_LOCAL_LENGTHS = (48, 56, 64, 96)

# Lookups get threads of their own: on the loop's default executor a slow DNS server would
# hold up everything else that uses it.
_RESOLVER = ThreadPoolExecutor(8, thread_name_prefix="foretell-dns")


class AddressRefused(Exception):
    """A URL whose host is, or resolves to, an address the server does not connect to for a
    caller; `always` when no setting allows it (metadata, link-local)."""

    def __init__(self, url: str, where: str, *, always: bool, setting: str) -> None:
        if always:
            message = (
                f"'{url}' points at {where}, a link-local or cloud metadata address; the server "
                "never connects there"
            )
        else:
            message = (
                f"'{url}' points at {where}, a private or loopback address; the server connects "
                f"there only when started with {setting}=true"
            )
        super().__init__(message)
        self.message = message
        self.url = url
        self.where = where
        self.always = always
        self.setting = setting


@dataclass(frozen=True, slots=True)
class Guard:
    """Which addresses one use of outbound connections may reach: public ones, and private or
    loopback ones too where `allow_private` (the server setting `setting`, named in refusals)."""

    allow_private: bool
    setting: str

    def check(self, url: str, host: str, address: IpAddress) -> None:
        """Raise AddressRefused if `host` (of `url`), resolved to `address`, is off limits."""
        where = host if host == str(address) else f"{host} ({address})"
        reached = reached_addresses(address)
        if reached != (address,):
            where += f", which reaches {' or '.join(str(a) for a in reached)}"
        if any(a in network for a in reached for network in _ALWAYS_REFUSED):
            raise AddressRefused(url, where, always=True, setting=self.setting)
        if not self.allow_private and any(not a.is_global or a.is_multicast for a in reached):
            raise AddressRefused(url, where, always=False, setting=self.setting)


def url_problem(url: str) -> str | None:
    """Why no connection could be made to `url` (too long, a host name DNS never resolves, a
    port nothing listens on, or a URL httpx refuses), or None."""
    if len(url) > MAX_URL_CHARS:
        return f"the URL has {len(url)} characters, more than the limit of {MAX_URL_CHARS}"
    # Lazy: httpx (~55 ms to import) loads with the first outbound URL, not at every start.
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"the URL cannot be sent to: {exc}"
    host, port = parsed.host, parsed.port
    if port is not None and not 1 <= port <= MAX_PORT:
        return f"the URL's port is {port}; a receiver listens on a port from 1 to {MAX_PORT}"
    if ":" not in host:  # a name (not an IPv6 address): it must be one DNS can be asked for
        try:
            encoded = host.encode("idna")
        except UnicodeError:
            return (
                f"the host name '{host}' cannot be looked up: a label of it is empty or over "
                f"{MAX_DNS_LABEL_CHARS} characters"
            )
        # The idna codec checks each label's length but not the whole name's (RFC 1035).
        length = len(encoded.rstrip(b"."))
        if length > MAX_DNS_NAME_CHARS:
            return (
                f"the host name '{host[:40]}...' has {length} characters, more than DNS's "
                f"limit of {MAX_DNS_NAME_CHARS}"
            )
    return None


def reached_addresses(address: IpAddress) -> tuple[IpAddress, ...]:
    """Where a packet to `address` ends up: the IPv4 address an IPv6 form embeds (mapped,
    compatible, translated, 6to4, NAT64; Teredo's server and client both), else `address`.
    Every one of them must pass for the address to."""
    if isinstance(address, ipaddress.IPv4Address):
        return (address,)
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:  # (server: bits 32-63, client: the last 32 bits inverted)
        return address.teredo
    if address in _NAT64 or address in _TRANSLATED or (address in _COMPATIBLE and int(address) > 1):
        # (:: and ::1 are IPv6's own unspecified and loopback addresses, not IPv4-compatible)
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    if address in _NAT64_LOCAL:
        return tuple(dict.fromkeys(_rfc6052(address, n) for n in _NAT64_LOCAL_LENGTHS))
    return (address,)


def _rfc6052(address: ipaddress.IPv6Address, prefix: int) -> ipaddress.IPv4Address:
    """The IPv4 address behind a translation prefix of `prefix` bits (RFC 6052, section 2.2)."""
    value = int(address)
    if prefix == 96:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    # Bits 64-71 are reserved (zero); the 120 bits around them hold the IPv4 address right
    # after the prefix.
    squeezed = (value >> 64) << 56 | (value & ((1 << 56) - 1))
    return ipaddress.IPv4Address((squeezed >> (120 - prefix - 32)) & 0xFFFFFFFF)


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
    except (OSError, UnicodeError):  # UnicodeError: a name IDNA cannot encode (url_problem)
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
