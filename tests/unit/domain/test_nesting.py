"""deeper_than finds the first array or object past the limit and the path to it, iteratively."""

from __future__ import annotations

from typing import Any

from foretell.domain.nesting import deeper_than, where


def lists(depth: int) -> list[Any]:
    """`depth` arrays, one inside the other."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_value_exactly_at_the_limit_passes() -> None:
    assert deeper_than({"input": {"n": lists(62)}}, 64) is None  # 1 + 1 + 62 levels


def test_one_level_more_is_found_with_its_path() -> None:
    path = deeper_than({"input": {"text": "a", "n": lists(63)}}, 64)

    assert path == ("input", "n", *[0] * 62)


def test_the_path_follows_the_deep_branch_past_shallow_ones() -> None:
    value = {"a": [1, {"b": 2}], "c": [{"d": lists(5)}]}

    assert deeper_than(value, 5) == ("c", 0, "d", 0, 0)
    assert deeper_than(value, 7) == ("c", 0, "d", 0, 0, 0, 0)
    assert deeper_than(value, 8) is None  # 1 + 1 + 1 + 5 levels


def test_scalars_and_strings_that_look_nested_do_not_count() -> None:
    assert deeper_than("[[[[[[[[", 1) is None
    assert deeper_than({"text": "[[[[{{{{"}, 1) is None


def test_a_value_far_deeper_than_pythons_stack_is_measured_without_recursion() -> None:
    path = deeper_than(lists(100_000), 64)

    assert path == (0,) * 64


def test_where_shows_the_first_steps_of_a_long_path() -> None:
    assert where(("input", "n", 0, 0)) == "input.n.0.0"
    assert where(("input", "n", *[0] * 62)) == "input.n.0.0.0.0.0.0…"
    assert where(()) == "the top level"
