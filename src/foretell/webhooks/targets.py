"""Where a webhook may point: the outbound guard's rule (`foretell.outbound.addresses`), with
private addresses allowed by FORETELL_WEBHOOK_ALLOW_PRIVATE, in the webhook's own words.

Checked when the prediction is created, so a caller learns at once (400) rather than from a
delivery that never comes; every delivery checks again at connect time (`webhooks.transport`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from foretell.errors import InvalidRequest
from foretell.outbound.addresses import (
    MAX_URL_CHARS,
    AddressRefused,
    Guard,
    IpAddress,
    reached_addresses,
    resolve,
    url_problem,
)

__all__ = [
    "MAX_URL_CHARS",
    "SETTING",
    "check_address",
    "check_target",
    "guard",
    "reached_addresses",
    "resolve",
    "url_problem",
]

SETTING = "FORETELL_WEBHOOK_ALLOW_PRIVATE"


def guard(allow_private: bool) -> Guard:
    """The outbound guard webhooks go through."""
    return Guard(allow_private=allow_private, setting=SETTING)


async def check_target(url: str, *, allow_private: bool) -> None:
    """Raise InvalidRequest naming the problem if `url` is not a place to send webhooks. A name
    that does not resolve now is accepted: a receiver's DNS can be briefly down."""
    problem = url_problem(url)
    if problem is not None:
        raise InvalidRequest(f"webhook: {problem}")
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
    try:
        guard(allow_private).check(url, host, address)
    except AddressRefused as refused:
        raise InvalidRequest(f"webhook: {_in_webhook_words(refused)}") from None


def _in_webhook_words(refused: AddressRefused) -> str:
    if refused.always:
        return (
            f"'{refused.url}' points at {refused.where}, a link-local or cloud metadata "
            "address; webhooks are never sent there"
        )
    return (
        f"'{refused.url}' points at {refused.where}, a private or loopback address; the server "
        f"sends webhooks there only when started with {SETTING}=true"
    )
