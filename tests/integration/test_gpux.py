"""GPUX (seed 003) against foretell: the seed's own requests, with only the host and a key
changed, get the documented shapes; its documented errors come back word for word."""

from __future__ import annotations

from typing import Any

import pytest
from _app import FIXTURES

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = (
    "demo/sentiment",
    "demo/iris",
    "fixtures/echo",
    "fixtures/raises-in-predict",
)
SETTINGS = {"default_model": "demo/sentiment"}  # what GPUX's /predict runs

# Seed 003, "Sentiment Analysis" and "Client Examples: Tensor input".
SENTIMENT = {"input_ids": [101, 1045, 2293, 2023, 102], "attention_mask": [1, 1, 1, 1, 1]}
TENSOR_INPUT = {"input_ids": [101, 2054, 2003, 102], "attention_mask": [1, 1, 1, 1]}


async def test_the_sentiment_example_answers_logits_for_one_item(api: Any) -> None:
    response = await api.http.post("/predict", json=SENTIMENT)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["logits"]
    negative, positive = body["logits"]  # one item in, one item out: no batch dimension
    assert positive > negative, "'i love this' reads as positive"


async def test_the_tensor_input_example(api: Any) -> None:
    response = await api.http.post("/predict", json=TENSOR_INPUT)
    assert response.status_code == 200, response.text
    assert len(response.json()["logits"]) == 2


async def test_a_batch_of_items_answers_a_batch(api: Any) -> None:
    batch = {
        "input_ids": [[101, 1045, 2293, 2023, 102], [101, 1045, 5223, 2023, 102]],
        "attention_mask": [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
    }
    response = await api.http.post("/predict", json=batch)
    assert response.status_code == 200, response.text
    loved, hated = response.json()["logits"]
    assert loved[1] > loved[0]
    assert hated[0] > hated[1]


async def test_missing_input_is_the_seeds_400(api: Any) -> None:
    response = await api.http.post("/predict", json={"attention_mask": [1, 1, 1]})
    assert response.status_code == 400
    assert response.json() == {"detail": "Missing required input: 'input_ids'"}


async def test_invalid_input_type_is_the_seeds_400(api: Any) -> None:
    response = await api.http.post(
        "/predict", json={"input_ids": "not an array", "attention_mask": [1, 1]}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid input type for 'input_ids': expected array"}


async def test_an_inference_failure_is_the_seeds_500(api: Any) -> None:
    response = await api.http.post("/models/fixtures/raises-in-predict/predict", json={"text": "x"})
    assert response.status_code == 500
    assert response.json() == {"detail": "Inference failed: ValueError: boom: cannot predict"}


async def test_any_model_by_name_and_plain_values(api: Any) -> None:
    response = await api.http.post("/models/fixtures/echo/predict", json={"text": "hi", "n": 2})
    assert response.status_code == 200, response.text
    assert response.json() == {"text": "hi", "n": 2}
    iris = await api.http.post("/models/demo/iris/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
    assert iris.status_code == 200, iris.text
    assert iris.json()["label"] == 0
    assert len(iris.json()["probabilities"]) == 3


async def test_a_value_the_schema_refuses_is_400_naming_it(api: Any) -> None:
    response = await api.http.post("/models/fixtures/echo/predict", json={"text": "x", "n": 99})
    assert response.status_code == 400
    assert "n: Input should be less than or equal to 10" in response.json()["detail"]


async def test_an_unknown_input_and_bad_json_are_400(api: Any) -> None:
    unknown = await api.http.post("/predict", json={**SENTIMENT, "token_type_ids": [0]})
    assert unknown.status_code == 400
    assert unknown.json() == {
        "detail": "Unknown input: 'token_type_ids'; the model's inputs are: "
        "input_ids, attention_mask"
    }
    bad = await api.http.post("/predict", content=b'{"input_ids": [1,')
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("request body is not valid JSON")


async def test_an_unknown_model_is_404_in_the_seeds_envelope(api: Any) -> None:
    response = await api.http.post("/models/demo/nope/predict", json={})
    assert response.status_code == 404
    assert response.json() == {"detail": "model 'demo/nope' not found"}


async def test_no_record_is_kept(api: Any) -> None:
    before = await api.list_all(model="demo/sentiment")
    assert (await api.http.post("/predict", json=SENTIMENT)).status_code == 200
    assert await api.list_all(model="demo/sentiment") == before


async def test_health_and_info_describe_the_default_model(api: Any) -> None:
    health = await api.http.get("/health", headers={"Authorization": ""})  # open, no key
    assert health.status_code == 200
    assert health.json() == {"status": "healthy", "model": "demo/sentiment:1"}
    info = await api.http.get("/info")
    assert info.json() == {
        "name": "demo/sentiment",
        "version": 1,
        "inputs": [
            {"name": "input_ids", "type": "int64", "shape": [-1, -1]},
            {"name": "attention_mask", "type": "int64", "shape": [-1, -1]},
        ],
        "outputs": [{"name": "logits", "type": "float32", "shape": [-1, 2]}],
        "runtime": "onnx",
        "status": "ready",
    }


async def test_the_batch_tip_runs_one_prediction_per_item_of_single_values(api: Any) -> None:
    response = await api.http.post(
        "/models/fixtures/echo/predict", json={"text": ["item1", "item2", "item3"], "n": 2}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"text": ["item1", "item2", "item3"], "n": [2, 2, 2]}
    uneven = await api.http.post(
        "/models/fixtures/echo/predict", json={"text": ["a", "b"], "n": [1]}
    )
    assert uneven.status_code == 400
    assert uneven.json() == {
        "detail": "batched inputs must be non-empty lists of the same length; got "
        "'text': 2 items, 'n': 1 items"
    }
    wrong = await api.http.post("/models/fixtures/echo/predict", json={"text": ["a", 3]})
    assert wrong.status_code == 400
    assert wrong.json() == {"detail": "Invalid input type for 'text': expected string"}


async def test_the_seeds_own_invalid_type_body_gets_the_seeds_answer(api: Any) -> None:
    response = await api.http.post("/predict", json={"input_ids": "not an array"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid input type for 'input_ids': expected array"}


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (
            {"input_ids": [[101, 102], [101]], "attention_mask": [[1, 1], [1]]},
            "Invalid input 'input_ids': rows of different lengths",
        ),
        ({"input_ids": [], "attention_mask": []}, "Invalid input 'input_ids': an empty array"),
    ],
)
async def test_ragged_or_empty_tensors_are_400_not_a_model_failure(
    api: Any, body: dict[str, Any], said: str
) -> None:
    response = await api.http.post("/predict", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(said)


async def test_a_wrong_method_is_405_in_the_seeds_envelope(api: Any) -> None:
    response = await api.http.get("/predict")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    assert response.headers["allow"] == "POST"


async def test_a_batch_of_too_many_items_is_400(api: Any) -> None:
    response = await api.http.post("/models/fixtures/echo/predict", json={"text": ["x"] * 257})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "a batch of 257 items; at most 256 per request, as each is a prediction of its own"
    )


async def test_an_answer_that_comes_too_late_stops_the_prediction(serve: Any) -> None:
    async with serve({"acme/sleeps": FIXTURES / "sleeps"}, max_wait_s=3) as app:
        late = await app.http.post("/models/acme/sleeps/predict", json={"seconds": 30})
        assert late.status_code == 500
        assert late.json() == {"detail": "Inference failed: no result within 3 s; it was stopped"}
        quick = await app.http.post("/models/acme/sleeps/predict", json={"seconds": 0})
        # Answered within its own 3 s: the replica was freed, not left sleeping out the 30 s
        # behind the caller's back (no clock needed to see it).
        assert quick.status_code == 200, quick.text
