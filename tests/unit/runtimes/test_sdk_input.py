"""The user SDK: `Input` metadata becomes pydantic fields; bad choices fail at import time."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import TypeAdapter
from pydantic.fields import FieldInfo

from foretell.sdk import Input, Predictor


def test_input_carries_default_description_and_bounds() -> None:
    field = Input(default=3, description="how many", ge=1, le=20)
    assert isinstance(field, FieldInfo)
    assert field.default == 3
    assert field.description == "how many"
    schema = _schema(int, field)
    assert (schema["minimum"], schema["maximum"], schema["default"]) == (1, 20, 3)


def test_input_without_default_is_required() -> None:
    assert Input().is_required()
    assert not Input(default=None).is_required()


def test_choices_become_an_enum() -> None:
    schema = _schema(str, Input(default="lower", choices=["lower", "preserve"]))
    assert schema["enum"] == ["lower", "preserve"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"choices": []}, "must be a non-empty list"),
        ({"choices": "ab"}, "must be a non-empty list"),
        ({"choices": ["a", "a"]}, "lists a value twice"),
        ({"default": "c", "choices": ["a", "b"]}, r"Input\(default='c'\) is not one of choices"),
    ],
)
def test_bad_choices_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Input(**kwargs)


def test_predictor_base_has_a_noop_setup_and_an_abstract_predict() -> None:
    class Bare(Predictor):
        pass

    bare = Bare()
    bare.setup()  # the default does nothing, and does not raise
    with pytest.raises(NotImplementedError, match="Bare must define predict"):
        bare.predict(x=1)


def _schema(annotation: Any, field: FieldInfo) -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(Annotated[annotation, field]).json_schema()
    return schema
