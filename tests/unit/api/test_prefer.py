"""The Prefer header parser: RFC 7240 syntax, wait bounds, and its error messages."""

from __future__ import annotations

import pytest

from foretell.api.prefer import Preferences, parse_prefer
from foretell.errors import HeaderTooLong, InvalidPreference

RULE = "wait must be an integer number of seconds from 1 to 60"


def parse(*values: str) -> Preferences:
    return parse_prefer(values, max_wait=60)


def test_no_header_means_no_preferences() -> None:
    assert parse() == Preferences(wait=None, respond_async=False, handling=None)


def test_wait_is_read() -> None:
    assert parse("wait=10") == Preferences(wait=10)


@pytest.mark.parametrize("header", ["wait", 'wait=""', "respond-async, wait"])
def test_wait_without_a_value_waits_as_long_as_allowed(header: str) -> None:
    """Replicate's sync mode: a bare `Prefer: wait` holds the request for up to the limit."""
    assert parse(header).wait == 60
    assert parse_prefer([header], max_wait=30).wait == 30


def test_respond_async_is_recorded_and_does_not_change_wait() -> None:
    assert parse("respond-async, wait=10") == Preferences(wait=10, respond_async=True)
    assert parse("respond-async, wait=10").wait == parse("wait=10").wait


@pytest.mark.parametrize(
    "header",
    [
        "WAIT=10",
        "Wait = 10",
        'wait="10"',
        "wait=010",
        "wait=10;foo=bar;baz",
        'wait=10 ; foo="a, b; c" ;',
        ", ,wait=10, ,",
        "\twait=10\t",
        "x-custom, wait=10, handling=strict",
        'foo=bar;baz="q\\"uote", wait=10',
    ],
)
def test_wait_survives_surrounding_syntax(header: str) -> None:
    assert parse(header).wait == 10


def test_values_from_several_headers_combine() -> None:
    assert parse("respond-async", "wait=5", "handling=lenient") == Preferences(
        wait=5, respond_async=True, handling="lenient"
    )


def test_first_occurrence_wins_across_lists_and_headers() -> None:
    assert parse("wait=5, wait=7").wait == 5
    assert parse("wait=5", "wait=99").wait == 5  # the later value is never even checked


def test_handling_is_case_insensitive_and_unknown_values_are_ignored() -> None:
    assert parse("handling=STRICT").handling == "strict"
    assert parse("handling=maybe").handling is None


def test_empty_header_and_unknown_preferences_are_ignored() -> None:
    assert parse("", "  ", "foo, bar=baz;q") == Preferences()


def test_max_wait_is_the_limit() -> None:
    assert parse_prefer(["wait=120"], max_wait=120).wait == 120
    with pytest.raises(InvalidPreference, match="from 1 to 30"):
        parse_prefer(["wait=31"], max_wait=30)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("wait=61", f"Prefer: wait=61 is out of range; {RULE}"),
        ("wait=0", f"Prefer: wait=0 is out of range; {RULE}"),
        ("wait=-1", f"Prefer: wait=-1 is out of range; {RULE}"),
        (
            "wait=" + "9" * 1000,
            f"Prefer: wait={'9' * 100}…(1000 characters) is out of range; {RULE}",
        ),
        ("wait=abc", f"Prefer: wait=abc is not an integer; {RULE}"),
        ("wait=1.5", f"Prefer: wait=1.5 is not an integer; {RULE}"),
    ],
)
def test_bad_wait_names_header_value_and_limit(header: str, message: str) -> None:
    with pytest.raises(InvalidPreference) as caught:
        parse(header)
    assert caught.value.message == message
    assert caught.value.code == "invalid_preference"


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("=10", "at character 1: expected a preference name"),
        ('wait="10', "at character 6: unterminated or invalid quoted string"),
        ("wait=", "at character 6: expected a value after 'wait='"),
        ("wait 10", "at character 6: expected ',' or ';' but found '1'"),
        ("a;=b", "at character 3: expected a parameter name"),
        ("wait=10 x", "at character 9: expected ',' or ';' but found 'x'"),
        ("w\u00e4it=10", "at character 2: expected ',' or ';' but found 'ä'"),
    ],
)
def test_malformed_header_names_the_problem(header: str, problem: str) -> None:
    with pytest.raises(InvalidPreference) as caught:
        parse(header)
    assert caught.value.message == f"Prefer header {header!r} is malformed {problem}"


def test_values_past_1_kib_together_are_refused_before_parsing() -> None:
    padded = "wait=5, " + " " * (1024 - 8)  # 1024 characters: parsed
    assert parse(padded).wait == 5

    with pytest.raises(HeaderTooLong) as caught:  # two values of 600: too long together
        parse("x=" + "1" * 598, "wait=5" + " " * 594)
    assert (
        caught.value.message == "header Prefer is 1200 characters long, more than the limit of 1024"
    )
    assert caught.value.code == "header_too_long"
