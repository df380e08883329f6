"""The native create body's quick read gives what pydantic's validation gives, and leaves every
body it does not take to that validation, errors included."""

from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError

from foretell.api.body import validate
from foretell.api.dialects.native.schemas import PredictionRequest, Wanted, read_request
from foretell.domain import ModelRef


def validated(data: Any) -> Wanted:
    body = validate(data, PredictionRequest)
    return Wanted(ModelRef.parse(body.model), body.input, body.webhook_target())


@pytest.mark.parametrize(
    "data",
    [
        {"model": "demo/digits", "input": {"features": [[0.0] * 64]}},
        {"model": "demo/digits:1", "input": {}},
        {"input": {"n": 1}, "model": "acme/m"},
        {"model": "acme/m", "input": {"n": 1}, "extra": "ignored"},
        {"model": "acme/m", "input": {"n": 1}, "webhook": "https://example.com/hook"},
        {"model": "acme/m", "input": {"n": 1}, "webhook": None},
    ],
)
def test_a_valid_body_reads_as_validated(data: dict[str, Any]) -> None:
    assert read_request(data) == validated(data)


@pytest.mark.parametrize(
    "data",
    [
        {"model": "not a ref", "input": {}},
        {"model": "acme/m", "input": [1, 2]},
        {"model": 7, "input": {}},
        {"model": "acme/m", "nput": {}},
        ["model", "input"],
        {"model": "acme/m", "input": {}, "webhook_events_filter": ["start"]},
    ],
)
def test_an_invalid_body_gets_pydantics_own_errors(data: Any) -> None:
    with pytest.raises(RequestValidationError) as quick:
        read_request(data)
    with pytest.raises(RequestValidationError) as full:
        validated(data)
    assert shown(quick.value) == shown(full.value)


def shown(error: RequestValidationError) -> list[dict[str, Any]]:
    """Its errors as a 422 shows them (an exception in `ctx` by its text: exceptions are never
    equal to each other)."""
    return [{**e, "ctx": {k: str(v) for k, v in e.get("ctx", {}).items()}} for e in error.errors()]
