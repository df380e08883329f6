"""Parse the `Cancel-After` header: a Go-style duration such as 90s, 1m30s or 500ms."""

from __future__ import annotations

import re

from foretell.api.headers import check_length
from foretell.errors import InvalidRequest, echo

MAX_S = 24 * 3600
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_cancel_after(value: str) -> float:
    """Seconds in (0, 24 h]; a bare number means seconds. Raises InvalidRequest naming the limit."""
    check_length("Cancel-After", value)
    text = value.strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        parts = _PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise InvalidRequest(
                f"Cancel-After: '{echo(value)}' is not a duration; use e.g. 30s, 1m30s, 500ms or 2h"
            ) from None
        seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if not 0 < seconds <= MAX_S:
        raise InvalidRequest(
            f"Cancel-After: '{echo(value)}' is out of range; it must be more than 0 and at most 24h"
        )
    return seconds
