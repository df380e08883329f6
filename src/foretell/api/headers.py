"""The length limit on header values foretell parses itself (Prefer, Cancel-After, Validate-Input).

Checked before parsing: parsing runs on the event loop, and a 4 MB Prefer header (a million
preferences) once took it 3.8 s, stalling every other request. No valid value comes near it."""

from __future__ import annotations

from collections.abc import Sequence

from foretell.errors import HeaderTooLong

MAX_PARSED_CHARS = 1024


def check_length(header: str, values: str | Sequence[str], limit: int = MAX_PARSED_CHARS) -> None:
    """HeaderTooLong if `header`'s value (its values together, if repeated) is past `limit`."""
    size = len(values) if isinstance(values, str) else sum(len(v) for v in values)
    if size > limit:
        raise HeaderTooLong(header, size, limit)
