"""Input checked against the model's schema: with Validate-Input before anything is stored
(422, FastAPI's shape), without it inside the prediction (failed, error.source "user")."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("demo/text-stats",)

TEXT_STATS = "demo/text-stats"
BAD_INPUT = {"text": "", "top_k": 50}


async def ids(api, model: str) -> set[str]:
    return {p["id"] for p in await api.list_all(model=model)}


def by_field(errors: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["loc"][-1]: e for e in errors}


async def test_validate_input_rejects_bad_input_with_422_naming_each_field(api) -> None:
    response = await api.post(TEXT_STATS, BAD_INPUT, headers={"Validate-Input": "true"})

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert [e["loc"] for e in errors] == [["body", "input", "text"], ["body", "input", "top_k"]]
    for error in errors:
        assert {"loc", "msg", "type", "input", "ctx"} <= error.keys(), error
    text, top_k = by_field(errors)["text"], by_field(errors)["top_k"]
    assert (text["type"], text["input"], text["ctx"]) == ("string_too_short", "", {"min_length": 1})
    assert (top_k["type"], top_k["input"], top_k["ctx"]) == ("less_than_equal", 50, {"le": 20})
    assert "20" in top_k["msg"]


async def test_validate_input_rejection_creates_no_prediction(api) -> None:
    before = await ids(api, TEXT_STATS)

    response = await api.post(TEXT_STATS, BAD_INPUT, headers={"Validate-Input": "true"})

    assert response.status_code == 422, response.text
    assert "Location" not in response.headers
    assert await ids(api, TEXT_STATS) == before


@pytest.mark.parametrize(
    ("bad_input", "field", "kind"),
    [
        pytest.param({}, "text", "missing", id="required-missing"),
        pytest.param({"text": "a", "case": "upper"}, "case", "literal_error", id="not-a-choice"),
        pytest.param({"text": "a", "top_k": "many"}, "top_k", "int_parsing", id="wrong-type"),
        pytest.param({"text": "a", "colour": 1}, "colour", "extra_forbidden", id="unknown-field"),
    ],
)
async def test_validate_input_names_the_field_and_error_type(
    api, bad_input: dict[str, Any], field: str, kind: str
) -> None:
    response = await api.post(TEXT_STATS, bad_input, headers={"Validate-Input": "true"})

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert [(e["loc"], e["type"]) for e in errors] == [(["body", "input", field], kind)]


async def test_validate_input_passes_good_input_through_to_the_model(api) -> None:
    record = await api.create(
        TEXT_STATS,
        {"text": "the cat and the hat", "top_k": 1},
        headers={"Validate-Input": "true"},
        prefer="wait=10",
    )

    assert record["status"] == "succeeded", record
    assert record["output"] == {
        "words": 5,
        "characters": 19,
        "top_words": [{"word": "the", "count": 2}],
    }


async def test_without_validate_input_bad_input_fails_the_prediction_as_user_error(api) -> None:
    response = await api.post(TEXT_STATS, BAD_INPUT)

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["input"] == BAD_INPUT
    failed = await api.wait_for(created["id"])
    assert failed["status"] == "failed", failed
    assert failed["output"] is None
    assert failed["started_at"] is None  # it never reached the model
    error = failed["error"]
    assert error["source"] == "user"
    assert "text" in error["message"]
    assert "top_k" in error["message"]
    # The same details Validate-Input: true gives, at the input's own location.
    early = await api.post(TEXT_STATS, BAD_INPUT, headers={"Validate-Input": "true"})
    expected = [{**e, "loc": e["loc"][1:]} for e in early.json()["detail"]]
    assert error["detail"] == expected


@pytest.mark.parametrize("value", ["false", "0", "no"])
async def test_validate_input_false_values_defer_validation(api, value: str) -> None:
    response = await api.post(TEXT_STATS, BAD_INPUT, headers={"Validate-Input": value})

    assert response.status_code == 201, response.text
    failed = await api.wait_for(response.json()["id"])
    assert (failed["status"], failed["error"]["source"]) == ("failed", "user")
