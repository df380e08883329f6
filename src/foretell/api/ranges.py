"""A request's `Range: bytes=...` header (RFC 9110 §14), as the one span a download serves."""

from __future__ import annotations

import re

from foretell.errors import RangeNotSatisfiable

_SPEC = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")
# Past this many digits a position is beyond any file; int() of over 4300 digits raises.
_DIGITS = 19


def requested_range(header: str, size: int) -> tuple[int, int] | None:
    """[start, end) of a file of `size` bytes that `header` asks for; None to send it whole
    (a header that is malformed, or asks for several ranges: RFC 9110 lets a server ignore
    both). One that starts past the end, or asks for nothing, is RangeNotSatisfiable."""
    found = _SPEC.fullmatch(header)
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header, size)
        return max(0, size - suffix), size
    start = _position(first)
    end = size if not last else _position(last) + 1
    if last and end <= start:
        return None  # last before first: not a valid range, so not a range at all
    if start >= size:
        raise RangeNotSatisfiable(header, size)
    return start, min(end, size)


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _DIGITS else 10**_DIGITS
