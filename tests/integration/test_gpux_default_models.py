"""GPUX's POST /predict over several default models (`make run`'s demo/sentiment and
demo/sentiment-text): each request runs on the one whose inputs its keys are, so seed 003's
tokenized and text examples both answer at one URL; a request that fits none or several is a
400 naming every default model and its inputs; /health and /info describe them all."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from _app import DEMO, FIXTURES

pytestmark = pytest.mark.anyio

MODELS = ("demo/sentiment", "demo/sentiment-text", "fixtures/echo")
SETTINGS = {"default_model": ["demo/sentiment", "demo/sentiment-text"]}

TOKENS = {"input_ids": [101, 1045, 2293, 2023, 102], "attention_mask": [1, 1, 1, 1, 1]}
SENTIMENT_TAKES = "demo/sentiment takes input_ids, attention_mask"
TEXT_TAKES = "demo/sentiment-text takes text"


async def test_tokens_run_demo_sentiment_and_text_runs_demo_sentiment_text(api: Any) -> None:
    tokens = await api.http.post("/predict", json=TOKENS)
    text = await api.http.post("/predict", json={"text": "I love GPUX!"})

    assert tokens.status_code == 200, tokens.text
    assert list(tokens.json()) == ["logits"]
    assert text.status_code == 200, text.text
    negative, positive = text.json()["sentiment"]
    assert positive > 0.5 > negative
    assert negative + positive == pytest.approx(1.0)


async def test_the_text_model_is_the_token_model_behind_a_tokenizer(api: Any) -> None:
    # "i love this" is the seed's [101, 1045, 2293, 2023, 102]: the same ids, so the same logits.
    negative, positive = (await api.http.post("/predict", json=TOKENS)).json()["logits"]
    text = (await api.http.post("/predict", json={"text": "I love this"})).json()
    hated = (await api.http.post("/predict", json={"text": "I hate this"})).json()

    softmax = [1 / (1 + math.exp(positive - negative)), 1 / (1 + math.exp(negative - positive))]
    assert text["sentiment"] == pytest.approx(softmax, rel=1e-5)
    assert hated["sentiment"][0] > 0.5


async def test_the_batch_tip_runs_on_the_text_model(api: Any) -> None:
    response = await api.http.post("/predict", json={"text": ["I love it", "awful, bad"]})

    assert response.status_code == 200, response.text
    loved, hated = response.json()["sentiment"]
    assert loved[1] > 0.5
    assert hated[0] > 0.5


@pytest.mark.parametrize(
    "body",
    [
        {"attention_mask": [1, 1, 1]},  # a required input missing
        {"text": "hi", "attention_mask": [1]},  # keys of two models
        {"text": "hi", "n": 2},  # one key too many for the text model
        {},
    ],
)
async def test_a_request_that_fits_no_default_model_is_400_naming_each(
    api: Any, body: dict[str, Any]
) -> None:
    response = await api.http.post("/predict", json=body)

    assert response.status_code == 400, response.text
    sent = ", ".join(body) or "none"
    assert response.json() == {
        "detail": f"the inputs sent ({sent}) fit none of the default models: "
        f"{SENTIMENT_TAKES}; {TEXT_TAKES}; send every required input of one of them and "
        "nothing else, or call one by name: POST /models/{owner}/{name}/predict"
    }


async def test_a_body_that_is_not_an_object_is_400(api: Any) -> None:
    response = await api.http.post("/predict", json=["I love GPUX!"])

    assert response.status_code == 400, response.text
    assert response.json() == {"detail": "request body must be a JSON object of named inputs"}


async def test_the_chosen_model_still_checks_its_inputs_in_the_seeds_words(api: Any) -> None:
    wrong_type = await api.http.post(
        "/predict", json={"input_ids": "not an array", "attention_mask": [1]}
    )
    empty = await api.http.post("/predict", json={"text": ""})

    assert wrong_type.status_code == 400
    assert wrong_type.json() == {"detail": "Invalid input type for 'input_ids': expected array"}
    assert empty.status_code == 400, empty.text
    assert "text: String should have at least 1 character" in empty.json()["detail"]


async def test_health_and_info_describe_every_default_model(api: Any) -> None:
    health = await api.http.get("/health", headers={"Authorization": ""})  # open, no key
    info = await api.http.get("/info")

    assert health.status_code == 200
    assert health.json() == {
        "status": "healthy",
        "model": "demo/sentiment:1",
        "models": ["demo/sentiment:1", "demo/sentiment-text:1"],
    }
    assert info.status_code == 200, info.text
    body = info.json()
    first, text = body.pop("models")
    assert body == first  # a one-model client reads the first, as before
    assert first["name"] == "demo/sentiment"
    assert [i["name"] for i in first["inputs"]] == ["input_ids", "attention_mask"]
    assert text == {
        "name": "demo/sentiment-text",
        "version": 1,
        "inputs": [{"name": "text", "type": "string", "shape": None}],
        "outputs": [{"name": "sentiment", "type": "array", "shape": None}],
        "runtime": "python",
        "status": "ready",
    }


async def test_inputs_that_fit_two_default_models_are_400_naming_both(serve: Any) -> None:
    models = {"demo/sentiment-text": DEMO / "sentiment-text", "acme/echo": FIXTURES / "echo"}
    async with serve(models, default_model="demo/sentiment-text,acme/echo") as app:
        both = await app.http.post("/predict", json={"text": "I love GPUX!"})
        echo = await app.http.post("/predict", json={"text": "I love GPUX!", "n": 2})

    assert both.status_code == 400, both.text
    assert both.json() == {
        "detail": "the inputs sent (text) fit several default models: "
        f"{TEXT_TAKES}; acme/echo takes text, optionally n; call one by name: "
        "POST /models/{owner}/{name}/predict"
    }
    assert echo.status_code == 200, echo.text
    assert echo.json() == {"text": "I love GPUX!", "n": 2}


async def test_a_default_model_that_failed_to_load_is_named_but_not_chosen(serve: Any) -> None:
    models = {"acme/broken": FIXTURES / "raises-in-setup", "acme/echo": FIXTURES / "echo"}
    async with serve(models, default_model=["acme/broken", "acme/echo"]) as app:
        echo = await app.http.post("/predict", json={"text": "hi"})
        neither = await app.http.post("/predict", json={"x": 1})

    assert echo.status_code == 200, echo.text
    assert neither.status_code == 400, neither.text
    assert neither.json()["detail"].startswith(
        "the inputs sent (x) fit none of the default models: acme/broken (failed to load; its "
        "inputs are unknown); acme/echo takes text, optionally n;"
    )


async def test_without_a_key_only_the_public_default_models_are_candidates(serve: Any) -> None:
    models = {"demo/sentiment-text": DEMO / "sentiment-text", "acme/echo": FIXTURES / "echo"}
    settings = {"default_model": "demo/sentiment-text,acme/echo", "anonymous_public": True}
    async with (
        serve(models, **settings) as app,
        httpx.AsyncClient(transport=app.http._transport, base_url="http://test") as keyless,
    ):
        text = await keyless.post("/predict", json={"text": "hi"})
        echo = await keyless.post("/predict", json={"text": "hi", "n": 2})
        info = await keyless.get("/info")

    assert text.status_code == 200, text.text  # acme/echo, private, is no rival for it
    assert list(text.json()) == ["sentiment"]
    # One default model is this caller's to run: it answers everything, as a lone one does.
    assert echo.status_code == 400, echo.text
    assert echo.json() == {"detail": "Unknown input: 'n'; the model's inputs are: text"}
    assert info.status_code == 200, info.text
    assert info.json()["name"] == "demo/sentiment-text"
    assert "models" not in info.json()  # only one is this caller's to see
