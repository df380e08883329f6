"""requested_range: the one span of a file a Range header asks for, or the whole file."""

from __future__ import annotations

import pytest

from foretell.api.ranges import requested_range
from foretell.errors import RangeNotSatisfiable


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-0", (0, 1)),
        ("bytes=10-19", (10, 20)),
        ("bytes = 10 - ", (10, 100)),
        ("bytes=90-1000", (90, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=-1000", (0, 100)),
        # Ignored, so the whole file: malformed, several ranges, last before first, no unit.
        ("bytes=5-1", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=a-b", None),
    ],
)
def test_the_span_asked_for(header: str, span: tuple[int, int] | None) -> None:
    assert requested_range(header, 100) == span


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=-5", 0), ("bytes=0-", 0)]
)
def test_none_of_the_file_is_416(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable, match=f"none of the file's {size} bytes"):
        requested_range(header, size)


@pytest.mark.parametrize(
    ("header", "span"),
    [
        (f"bytes=0-{'9' * 5000}", (0, 100)),
        (f"bytes=-{'9' * 5000}", (0, 100)),
        (f"bytes={'0' * 5000}10-19", (10, 20)),
    ],
)
def test_positions_of_thousands_of_digits_are_read(header: str, span: tuple[int, int]) -> None:
    # int() refuses a string of over 4300 digits (a ValueError, so a 500 if let out).
    assert requested_range(header, 100) == span


def test_a_start_of_thousands_of_digits_is_past_the_end() -> None:
    with pytest.raises(RangeNotSatisfiable, match="none of the file's 100 bytes"):
        requested_range(f"bytes={'9' * 5000}-", 100)
