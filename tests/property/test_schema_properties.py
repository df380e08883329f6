"""InputValidator built from a model's JSON Schema judges inputs exactly as that model does."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from foretell.errors import InvalidInput
from foretell.manifest.schema import InputValidator

NAMES = ["x", "top_k", "model_config", "json", "a-b", "input_ids"]
LOOK_AROUND = r"^(?!tmp)"
PATTERNS = [r"^[a-z]+$", r"\d", LOOK_AROUND]

json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-20, 20)
    | st.floats(-20, 20, allow_nan=False)
    | st.text(max_size=4)
    | st.sampled_from(["red", "a", "3", "2.5", "true"])
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(NAMES), inner),
    max_leaves=8,
)


class Inner(BaseModel):
    n: int = Field(ge=0)


@st.composite
def bounds(draw: st.DrawFn, number: type) -> dict[str, Any]:
    value = st.integers(-10, 10) if number is int else st.integers(-10, 10) | st.just(0.5)
    keys = draw(st.lists(st.sampled_from(["ge", "gt", "le", "lt", "multiple_of"]), unique=True))
    out = {key: draw(value) for key in keys}
    if "multiple_of" in out:  # pydantic requires a step above zero
        out["multiple_of"] = abs(out["multiple_of"]) or 2
    return out


number_value = st.integers(-12, 12) | st.floats(-12, 12, allow_nan=False) | st.just("3")
list_value = st.lists(number_value | st.text(max_size=2) | st.lists(number_value), max_size=4)
Field_ = tuple[Any, dict[str, Any], st.SearchStrategy[Any]]


@st.composite
def field_type(draw: st.DrawFn) -> Field_:
    """(type, Field keyword arguments, likely values): what a python runtime's model declares."""
    kind = draw(
        st.sampled_from(["str", "int", "float", "bool", "literal", "enum", "list", "inner"])
    )
    if kind == "str":
        size = st.none() | st.integers(0, 4)
        low, high, pattern = draw(size), draw(size), draw(st.none() | st.sampled_from(PATTERNS))
        kwargs = {"min_length": low, "max_length": high, "pattern": pattern}
        words = st.text(max_size=6) | st.sampled_from(["abc", "tmp", "a1", "", "12345"])
        return str, {k: v for k, v in kwargs.items() if v is not None}, words
    if kind in ("int", "float"):
        number = int if kind == "int" else float
        return number, draw(bounds(number)), number_value | st.booleans()
    if kind == "literal":
        choices = draw(st.lists(st.sampled_from(["a", "b", 1, 2.5, None]), min_size=1, unique=True))
        return (
            Literal[tuple(choices)],
            {},
            st.sampled_from(choices) | st.sampled_from(["c", 2, True]),
        )
    if kind == "enum":
        color = Enum("Color", [("RED", "red"), ("GREEN", "green")])
        return color, {}, st.sampled_from(["red", "green"]) | st.sampled_from(["blue", 1])
    if kind == "list":
        item = draw(st.sampled_from([int, float, str, list[float]]))
        size = st.none() | st.integers(0, 3)
        kwargs = {"min_length": draw(size), "max_length": draw(size)}
        return list[item], {k: v for k, v in kwargs.items() if v is not None}, list_value
    if kind == "inner":
        inner = st.fixed_dictionaries({"n": number_value}, optional={"other": json_scalar})
        return Inner, {}, inner
    return bool, {}, st.booleans() | st.sampled_from(["yes", "off", 0, 2])


@st.composite
def model(draw: st.DrawFn) -> tuple[type[BaseModel], st.SearchStrategy[Any]]:
    """A model with one to three fields, and a strategy for inputs that mostly fit its keys."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    fields: dict[str, Any] = {}
    values: dict[str, st.SearchStrategy[Any]] = {}
    for i, name in enumerate(names):
        annotation, kwargs, likely = draw(field_type())
        if draw(st.booleans()):
            annotation, kwargs = annotation | None, {**kwargs, "default": None}
        fields[f"field_{i}"] = (annotation, Field(alias=name, **kwargs))
        values[name] = st.one_of(likely, likely, likely, json_value)  # mostly plausible
    # Rust regex, pydantic's default, refuses look-around; InputValidator falls back on its own.
    engine: Any = "python-re" if LOOK_AROUND in repr(fields) else "rust-regex"
    config = ConfigDict(extra="forbid", regex_engine=engine)
    original = create_model("Original", __config__=config, **fields)
    objects = st.fixed_dictionaries({}, optional={**values, "extra": json_value})
    # Most inputs carry every key, some miss one or add one, a few are no object at all.
    full = st.fixed_dictionaries(values)
    return original, st.one_of(full, full, full, objects, json_value)


def expected(original: type[BaseModel], data: Any) -> dict[str, Any] | list[dict[str, Any]]:
    """What the original model says, in the shape InputValidator promises."""
    try:
        return original.model_validate(data, from_attributes=True).model_dump(
            mode="json", by_alias=True
        )
    except ValidationError as exc:
        return [
            {**{k: v for k, v in e.items() if k != "loc"}, "loc": ["input", *e["loc"]]}
            for e in exc.errors(include_url=False)
        ]


@settings(max_examples=150, deadline=None)
@given(model(), st.data())
def test_validator_agrees_with_the_original_model(
    spec: tuple[type[BaseModel], st.SearchStrategy[Any]], data: st.DataObject
) -> None:
    original, inputs = spec
    validator = InputValidator(original.model_json_schema())
    for sample in data.draw(st.lists(inputs, min_size=1, max_size=8)):
        try:
            actual: Any = validator.validate(sample)
        except InvalidInput as exc:
            actual = exc.errors
        assert actual == expected(original, sample)
