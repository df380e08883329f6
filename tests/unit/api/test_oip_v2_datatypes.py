"""OIP v2's element checks: the whole-tensor fast paths answer as the element walk does."""

from __future__ import annotations

from typing import Any

import pytest

from foretell.api.dialects.oip_v2 import specs
from foretell.api.dialects.oip_v2.datatypes import DATATYPES
from foretell.api.dialects.oip_v2.tensors import _check_finite, _layout
from foretell.errors import InvalidRequest

CASES: list[tuple[str, list[Any]]] = [
    ("FP32", [1.0, 2, 3.5]),
    ("FP32", [1.0, True]),
    ("FP32", [1.0, "2"]),
    ("FP32", [1.0, None]),
    ("INT8", [1, -128, 127]),
    ("INT8", [1, 128]),
    ("INT8", [1, 2.0]),
    ("INT8", [0, False]),
    ("UINT64", [2**64 - 1]),
    ("UINT64", [2**64]),
    ("UINT8", [-1]),
    ("BOOL", [True, False]),
    ("BOOL", [True, 1]),
    ("BYTES", ["a", "b"]),
    ("BYTES", ["a", b"b"]),
    ("INT64", []),
]


@pytest.mark.parametrize(("datatype", "values"), CASES)
def test_problem_names_what_the_element_walk_names(datatype: str, values: list[Any]) -> None:
    known = DATATYPES[datatype]
    assert known.problem(values) == known._first_problem(values)


def test_problem_names_the_first_culprit() -> None:
    found = DATATYPES["INT8"].problem([1, 2, 300, "x"])
    assert found == "data element 2 (300) is out of INT8's range -128..127"


@pytest.mark.parametrize(
    ("values", "shown"),
    [([1.0, float("nan")], "element 1 is NaN"), ([2**2000, float("-inf")], "element 1 is -Inf")],
)
def test_check_finite_names_the_element(values: list[Any], shown: str) -> None:
    with pytest.raises(InvalidRequest, match=shown):
        _check_finite("x", values)


def test_check_finite_takes_integers_too_large_for_a_float() -> None:
    _check_finite("x", [2**2000, 1.5])


def test_specs_follow_the_schema_object_not_its_address() -> None:
    first = {"properties": {"a": {"type": "number"}}}
    assert list(specs.inputs(first)) == ["a"]
    assert specs.inputs(first) is specs.inputs(first)
    second = {"properties": {"b": {"type": "number"}}}
    assert list(specs.inputs(second)) == ["b"]
    assert list(specs.outputs(second) or {}) == ["b"]


class _Row(list[Any]):
    """A list subclass, as a model's own output type may be."""


@pytest.mark.parametrize(
    ("value", "shape", "flat"),
    [
        (5, [1], [5]),
        ([], [0], []),
        ([[], []], [2, 0], []),
        ([[1, 2], [3, 4]], [2, 2], [1, 2, 3, 4]),
        ([[1, 2], [3]], [2], [[1, 2], [3]]),
        ([[1], 2], [2], [[1], 2]),
        ([[1, [2]], [3, 4]], [2, 2], [1, [2], 3, 4]),
        ([_Row([1]), [2]], [2, 1], [1, 2]),
    ],
)
def test_layout_descends_while_every_level_is_regular(
    value: Any, shape: list[int], flat: list[Any]
) -> None:
    assert _layout(value) == (shape, flat)
