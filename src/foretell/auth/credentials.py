"""The key a request carries, in any of the seeds' forms: `Authorization: Bearer <key>` (seed
001), `Token <key>` (SlashML), `Api-Key <key>` (Baseten), or an `X-API-Key` header."""

from __future__ import annotations

from collections.abc import Mapping

from foretell.errors import Unauthenticated

SCHEMES = ("bearer", "token", "api-key")
FORMS = (
    "Authorization: Bearer <key>, Authorization: Token <key>, Authorization: Api-Key <key> "
    "or X-API-Key: <key>"
)


def carries_credential(headers: Mapping[str, str]) -> bool:
    """Whether the request offers a key at all. An empty or malformed one counts: it is refused
    with the reason, never taken for no key."""
    return "authorization" in headers or "x-api-key" in headers


def credential(headers: Mapping[str, str]) -> str:
    """The key, or Unauthenticated naming the accepted forms. Never echoes what it was given:
    a mangled header may still hold a real key."""
    authorization = headers.get("authorization")
    if authorization is None:
        key = headers.get("x-api-key", "").strip()
        if not key:
            raise Unauthenticated(f"no API key; send one as {FORMS}")
        return key
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() not in SCHEMES:
        shown = scheme if scheme.isalpha() and len(scheme) <= 16 else "that scheme"
        raise Unauthenticated(
            f"the Authorization header's scheme is not one foretell accepts ({shown}); "
            f"send the key as {FORMS}"
        )
    key = key.strip()
    if not key or " " in key:
        raise Unauthenticated(
            f"the Authorization header has no key after '{scheme}' (or more than one word); "
            f"send it as {FORMS}"
        )
    return key
