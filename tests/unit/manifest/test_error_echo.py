"""An error echoes enough of a refused value to recognise it, and never so much that it cannot
be written: orjson writes 254 levels at most, and a 10 MB input is no part of a useful 422."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from foretell.errors import InvalidInput
from foretell.manifest.schema import InputValidator, field_error

# What an error echoes at most (foretell.manifest.schema.ECHO_*).
ECHO_DEPTH, ECHO_ITEMS, ECHO_CHARS = 16, 100, 1000
SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
}


def lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def refused(value: Any) -> dict[str, Any]:
    with pytest.raises(InvalidInput) as caught:
        InputValidator(SCHEMA).validate({"n": value})
    (error,) = caught.value.errors
    return error


def test_a_value_nested_past_what_orjson_writes_is_echoed_cut_short() -> None:
    error = refused(lists(300))

    echoed = error["input"]
    for _ in range(ECHO_DEPTH - 1):
        (echoed,) = echoed
    assert echoed == [f"… (nested deeper than {ECHO_DEPTH} levels; not shown)"]
    orjson.dumps({"detail": [error]})  # the 422 can be written


def test_a_long_string_is_echoed_cut_short_saying_how_much_is_left() -> None:
    error = refused("x" * 1_000_000)

    assert error["input"] == "x" * ECHO_CHARS + f"… ({1_000_000 - ECHO_CHARS} more characters)"


def test_a_long_array_and_a_large_object_are_echoed_in_part() -> None:
    array = field_error({"type": "t", "loc": (), "msg": "m", "input": list(range(10_000))})
    mapping = field_error(
        {"type": "t", "loc": (), "msg": "m", "input": {str(i): i for i in range(500)}}
    )

    assert array["input"] == [*range(ECHO_ITEMS), f"… ({10_000 - ECHO_ITEMS} more items)"]
    assert len(mapping["input"]) == ECHO_ITEMS + 1
    assert mapping["input"]["…"] == f"{500 - ECHO_ITEMS} more keys"


def test_a_small_value_is_echoed_whole() -> None:
    value = {"a": [1, 2, {"b": "c" * 100}], "d": lists(10)}

    assert field_error({"type": "t", "loc": ("x",), "msg": "m", "input": value})["input"] == value
