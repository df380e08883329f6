"""InputValidator: inputs checked against a version's JSON Schema, errors shaped as FastAPI's."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from foretell.errors import InvalidInput
from foretell.manifest.schema import InputValidator, field_error


class Color(Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    city: str
    zip: str = Field("00000", pattern=r"^\d{5}$")


class Request(BaseModel):
    """A python model's predict signature, the way the python runtime publishes it."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=20)
    top_k: int = Field(5, ge=1, le=10)
    temperature: float = Field(0.7, gt=0, lt=2)
    mode: Literal["fast", "best"] = "fast"
    color: Color = Color.RED
    stream: bool = False
    weights: list[float] = [1.0, 2.0]
    seed: int | None = None
    address: Address | None = None


TENSOR = {
    "type": "object",
    "properties": {
        "features": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
            "x-dtype": "float32",
            "x-shape": [-1, 4],
        }
    },
    "required": ["features"],
    "additionalProperties": False,
}

DEFAULTS = {
    "top_k": 5,
    "temperature": 0.7,
    "mode": "fast",
    "color": "red",
    "stream": False,
    "weights": [1.0, 2.0],
    "seed": None,
    "address": None,
}


@pytest.fixture(scope="module")
def request_validator() -> InputValidator:
    return InputValidator(Request.model_json_schema())


def errors_of(validator: InputValidator, data: Any) -> list[dict[str, Any]]:
    with pytest.raises(InvalidInput) as caught:
        validator.validate(data)
    json.dumps(caught.value.errors)  # the 422 body must serialize as it is
    return caught.value.errors


def test_defaults_are_applied(request_validator: InputValidator) -> None:
    assert request_validator.validate({"prompt": "hi"}) == {"prompt": "hi", **DEFAULTS}


def test_valid_input_round_trips(request_validator: InputValidator) -> None:
    data = {
        "prompt": "a cat",
        "top_k": 3,
        "temperature": 1.5,
        "mode": "best",
        "color": "green",
        "stream": True,
        "weights": [0.5],
        "seed": 42,
        "address": {"city": "Oslo", "zip": "01234"},
    }
    assert request_validator.validate(data) == data


def test_lax_coercion_matches_fastapi(request_validator: InputValidator) -> None:
    out = request_validator.validate({"prompt": "hi", "top_k": "3", "weights": [1, "2.5"]})
    assert (out["top_k"], out["weights"]) == (3, [1.0, 2.5])
    assert request_validator.validate({"prompt": "hi", "top_k": True})["top_k"] == 1


def test_missing_field(request_validator: InputValidator) -> None:
    assert errors_of(request_validator, {}) == [
        {"type": "missing", "loc": ["input", "prompt"], "msg": "Field required", "input": {}}
    ]


def test_extra_field(request_validator: InputValidator) -> None:
    assert errors_of(request_validator, {"prompt": "hi", "topk": 3}) == [
        {
            "type": "extra_forbidden",
            "loc": ["input", "topk"],
            "msg": "Extra inputs are not permitted",
            "input": 3,
        }
    ]


def test_wrong_type(request_validator: InputValidator) -> None:
    assert errors_of(request_validator, {"prompt": "hi", "top_k": "many"}) == [
        {
            "type": "int_parsing",
            "loc": ["input", "top_k"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": "many",
        }
    ]


@pytest.mark.parametrize(
    ("field", "value", "kind", "msg", "ctx"),
    [
        ("top_k", 11, "less_than_equal", "less than or equal to 10", {"le": 10}),
        ("top_k", 0, "greater_than_equal", "greater than or equal to 1", {"ge": 1}),
        ("temperature", 0, "greater_than", "greater than 0", {"gt": 0}),
        ("temperature", 2, "less_than", "less than 2", {"lt": 2}),
        ("mode", "slow", "literal_error", "'fast' or 'best'", {"expected": "'fast' or 'best'"}),
        ("color", "blue", "enum", "'red' or 'green'", {"expected": "'red' or 'green'"}),
    ],
)
def test_out_of_bounds_carries_ctx(
    request_validator: InputValidator,
    field: str,
    value: Any,
    kind: str,
    msg: str,
    ctx: dict[str, Any],
) -> None:
    data = {"prompt": "hi", field: value}
    assert errors_of(request_validator, data) == [
        {"type": kind, "loc": ["input", field], "msg": f"Input should be {msg}", "input": value,
         "ctx": ctx}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "kind", "msg", "ctx"),
    [
        ("", "string_too_short", "String should have at least 1 character", {"min_length": 1}),
        (
            "x" * 21,
            "string_too_long",
            "String should have at most 20 characters",
            {"max_length": 20},
        ),
    ],
)
def test_string_length_carries_ctx(
    request_validator: InputValidator, value: str, kind: str, msg: str, ctx: dict[str, Any]
) -> None:
    assert errors_of(request_validator, {"prompt": value}) == [
        {"type": kind, "loc": ["input", "prompt"], "msg": msg, "input": value, "ctx": ctx}
    ]


def test_nested_model_errors_locate_the_inner_field(request_validator: InputValidator) -> None:
    data = {"prompt": "hi", "address": {"zip": "1"}}
    assert errors_of(request_validator, data) == [
        {"type": "missing", "loc": ["input", "address", "city"], "msg": "Field required",
         "input": {"zip": "1"}},
        {"type": "string_pattern_mismatch", "loc": ["input", "address", "zip"],
         "msg": "String should match pattern '^\\d{5}$'", "input": "1",
         "ctx": {"pattern": "^\\d{5}$"}},
    ]  # fmt: skip


@pytest.mark.parametrize("data", [[1, 2], "text", 3, None])
def test_not_an_object(request_validator: InputValidator, data: Any) -> None:
    assert errors_of(request_validator, data) == [
        {
            "type": "model_attributes_type",
            "loc": ["input"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": data,
        }
    ]


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", float("nan"), float("inf")])
def test_a_number_that_is_not_finite_is_refused_even_in_lax_mode(value: Any) -> None:
    """Lax mode read the string "nan" as a float; the model was handed None (how JSON writes
    NaN), and failed as if it had crashed. No schema takes NaN or ±Inf: JSON has neither."""
    (error,) = errors_of(InputValidator(TENSOR), {"features": [[1, 2, value, 4]]})
    assert (error["type"], error["loc"]) == ("finite_number", ["input", "features", 0, 2])
    assert error["msg"] == "Input should be a finite number"


def test_tensor_round_trips_as_floats() -> None:
    out = InputValidator(TENSOR).validate({"features": [[1, 2, 3, 4], [0.5, 0, 0, 1]]})
    assert out == {"features": [[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, 0.0, 1.0]]}


def test_tensor_wrong_inner_length() -> None:
    assert errors_of(InputValidator(TENSOR), {"features": [[1, 2, 3, 4], [1, 2, 3]]}) == [
        {
            "type": "too_short",
            "loc": ["input", "features", 1],
            "msg": "List should have at least 4 items after validation, not 3",
            "input": [1, 2, 3],
            "ctx": {"field_type": "List", "min_length": 4, "actual_length": 3},
        }
    ]


def test_tensor_wrong_element_and_extra_key() -> None:
    assert errors_of(InputValidator(TENSOR), {"features": [[1, 2, "x", 4]], "b": 1}) == [
        {"type": "float_parsing", "loc": ["input", "features", 0, 2],
         "msg": "Input should be a valid number, unable to parse string as a number",
         "input": "x"},
        {"type": "extra_forbidden", "loc": ["input", "b"],
         "msg": "Extra inputs are not permitted", "input": 1},
    ]  # fmt: skip


def test_awkward_property_names_work_through_aliases() -> None:
    names = ["model_config", "schema", "json", "input_ids", "a-b", "class", "_private", "f0"]
    schema = {"type": "object", "properties": {n: {"type": "integer"} for n in names}}
    validator = InputValidator(schema)
    data = {n: i for i, n in enumerate(names)}
    assert validator.validate(data) == data
    assert errors_of(validator, {"model_config": "x"})[0]["loc"] == ["input", "model_config"]


def test_optional_without_stated_default_is_left_out_when_unset() -> None:
    class WithFactory(BaseModel):
        tags: list[str] = Field(default_factory=list)

    validator = InputValidator(WithFactory.model_json_schema())
    assert validator.validate({}) == {}
    assert validator.validate({"tags": ["a"]}) == {"tags": ["a"]}


def test_recursive_model() -> None:
    class Tree(BaseModel):
        value: int
        children: list[Tree] = []

    validator = InputValidator(Tree.model_json_schema())
    tree = {"value": 1, "children": [{"value": 2, "children": []}]}
    assert validator.validate(tree) == tree
    bad = {"value": 1, "children": [{"value": 2, "children": [{"value": "x"}]}]}
    assert errors_of(validator, bad)[0]["loc"] == ["input", "children", 0, "children", 0, "value"]


def test_look_around_patterns_fall_back_to_python_re() -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(?!tmp)"}}}
    validator = InputValidator(schema)
    assert validator.validate({"s": "data"}) == {"s": "data"}
    assert errors_of(validator, {"s": "tmp1"})[0]["type"] == "string_pattern_mismatch"


def test_object_shapes() -> None:
    schema = {
        "type": "object",
        "properties": {
            "anything": {},
            "mapping": {"type": "object", "additionalProperties": {"type": "integer"}},
            "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
            "nullable": {"type": ["integer", "null"], "minimum": 0},
        },
    }
    validator = InputValidator(schema)
    data = {"anything": [{"x": 1}], "mapping": {"a": 1}, "pair": [1, "b"], "nullable": None}
    assert validator.validate(data) == data
    assert errors_of(validator, {"mapping": {"a": "x"}})[0]["loc"] == ["input", "mapping", "a"]
    assert errors_of(validator, {"pair": [1, "b", 3]})[0]["type"] == "too_long"
    # [X, null] is pydantic's Optional: only X's complaint is reported, as FastAPI does
    nullable = errors_of(validator, {"nullable": -1})
    assert [(e["type"], e["loc"]) for e in nullable] == [
        ("greater_than_equal", ["input", "nullable"])
    ]


def test_an_empty_schema_accepts_any_object() -> None:
    assert InputValidator({}).validate({"x": [1, {"y": None}]}) == {"x": [1, {"y": None}]}


def test_json_schema_is_the_schema_given() -> None:
    assert InputValidator(TENSOR).json_schema == TENSOR


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "array"}, "must describe an object"),
        ({"properties": {"x": {"$ref": "#/$defs/Nope"}}}, "points at nothing"),
        ({"properties": {"x": {"$ref": "other.json#/X"}}}, "only local \\$ref"),
        ({"properties": {"x": {"type": "string", "pattern": "("}}}, "invalid pattern"),
        ({"properties": {"x": {"enum": []}}}, "cannot be compiled"),
    ],
)
def test_an_unusable_schema_is_a_value_error(schema: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        InputValidator(schema)


def test_exceptions_in_ctx_are_stringified() -> None:
    # Our compiled models raise none, but a pydantic error may carry one: ctx["error"].
    class Checked(BaseModel):
        x: int

        @field_validator("x")
        @classmethod
        def odd(cls, value: int) -> int:
            raise ValueError("x must be odd")

    with pytest.raises(ValidationError) as caught:
        Checked.model_validate({"x": 2})
    error = field_error(caught.value.errors(include_url=False)[0], ("input",))
    assert error["ctx"] == {"error": "x must be odd"}
    assert error["loc"] == ["input", "x"]
