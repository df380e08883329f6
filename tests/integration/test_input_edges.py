"""Input the model cannot take is the caller's error on every API, never the model's: an empty
batch (it failed in the model as "shape [0]", a 500 on three dialects) and a number that is
not finite (lax mode read the string "nan" as one; the model was handed None)."""

from __future__ import annotations

from typing import Any

import pytest
from _app import NativeApi

pytestmark = pytest.mark.anyio

MODELS = ("demo/iris", "demo/digits")

TOO_SHORT = "List should have at least 1 item after validation, not 0"


@pytest.mark.parametrize("model", ["demo/iris", "demo/digits"])
async def test_native_refuses_an_empty_batch_with_422_before_queueing(
    api: NativeApi, model: str
) -> None:
    before = {p["id"] for p in await api.list_all(model=model)}

    response = await api.http.post(
        "/v1/predictions",
        json={"model": model, "input": {"features": []}},
        headers={"Prefer": "wait=5", "Validate-Input": "true"},
    )

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "input", "features"], "too_short")
    assert error["msg"] == TOO_SHORT
    assert {p["id"] for p in await api.list_all(model=model)} == before


async def test_without_validate_input_the_record_fails_as_the_users_error(
    api: NativeApi,
) -> None:
    response = await api.http.post(
        "/v1/predictions",
        json={"model": "demo/iris", "input": {"features": []}},
        headers={"Prefer": "wait=30"},
    )

    assert response.status_code == 201, response.text
    record = response.json()
    assert record["status"] == "failed", record
    assert record["error"]["source"] == "user", record["error"]
    assert "features" in record["error"]["message"]
    assert TOO_SHORT in record["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        pytest.param("/model/demo-iris/production/predict", [], 400, id="baseten-batch"),
        pytest.param(
            "/model/demo-iris/production/predict",
            {"features": []},
            400,
            id="baseten",
        ),
        pytest.param(
            "/model-deployment/v1/models/demo%2Firis/predict",
            {"model_input": {"features": []}},
            400,
            id="slashml",
        ),
        pytest.param(
            "/v2/models/demo/iris/infer",
            {"inputs": [{"name": "features", "shape": [0, 4], "datatype": "FP32", "data": []}]},
            400,
            id="oip",
        ),
    ],
)
async def test_the_dialects_answer_an_empty_batch_as_the_callers_error(
    api: NativeApi, path: str, body: Any, status: int
) -> None:
    response = await api.http.post(path, json=body)

    assert response.status_code == status, response.text
    assert f"invalid input: input.features: {TOO_SHORT}" in response.text


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity"])
async def test_a_number_given_as_nan_or_infinity_text_is_422(api: NativeApi, text: str) -> None:
    response = await api.http.post(
        "/v1/predictions",
        json={"model": "demo/iris", "input": {"features": [[5.1, text, 1.4, 0.2]]}},
        headers={"Prefer": "wait=5", "Validate-Input": "true"},
    )

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (
        ["body", "input", "features", 0, 1],
        "finite_number",
    )
