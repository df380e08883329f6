"""Cancel-After takes Go-style durations (30s, 1m30s, 500ms, 2h) or bare seconds, up to 24h."""

import pytest

from foretell.api.durations import parse_cancel_after
from foretell.errors import HeaderTooLong, InvalidRequest


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("1m30s", 90),
        ("500ms", 0.5),
        ("2h", 7200),
        ("15", 15),
        (" 1M ", 60),
        ("24h", 86400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_cancel_after(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["abc", "1x", "s", "1m 30s", "-5s", ""])
def test_not_a_duration_names_the_header_and_shows_examples(text: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^Cancel-After: '.*' is not a duration; use e\.g\."):
        parse_cancel_after(text)


@pytest.mark.parametrize("text", ["0s", "0", "24h1s", "90000"])
def test_out_of_range_names_the_limit(text: str) -> None:
    with pytest.raises(
        InvalidRequest, match=r"out of range; it must be more than 0 and at most 24h"
    ):
        parse_cancel_after(text)


def test_a_value_past_1_kib_is_refused_before_parsing_and_echoes_are_short() -> None:
    with pytest.raises(HeaderTooLong, match=r"^header Cancel-After is 1025 characters long, "):
        parse_cancel_after("1" * 1025)
    with pytest.raises(InvalidRequest) as caught:
        parse_cancel_after("1" * 1000 + "x")
    assert caught.value.message.startswith(f"Cancel-After: '{'1' * 100}…(1001 characters)' is")
