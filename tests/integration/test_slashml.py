"""SlashML (seed 000) against foretell: the seed's own request, with the host, the model id and
the key changed, answers in its documented shape; its documented errors come back as shown."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _app import FIXTURES, ROOT

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = (
    "demo/iris",
    "demo/text-stats",
    "demo/fill-mask",
    "fixtures/echo",
    "fixtures/raises-in-predict",
)

SEED_NOT_READY = {
    "error": "some error occured when requesting job status",
    "full_message": [
        "{'error': ErrorDetail(string='model not ready', code='permission_denied'), "
        "'reasons': [ErrorDetail(string='model not ready', code='permission_denied'), "
        "ErrorDetail(string='model is still being built or deployed', "
        "code='permission_denied')]}"
    ],
}


async def seed_request(api: Any, model_id: str, model_input: Any) -> Any:
    """Seed 000's Python snippet: json.dumps'd payload, a Token header, POST."""
    url = f"/model-deployment/v1/models/{model_id}/predict"
    payload = json.dumps({"model_input": model_input})
    key = api.http.headers["Authorization"].removeprefix("Bearer ")
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    return await api.http.request("POST", url, headers=headers, content=payload)


async def test_the_seed_request_answers_id_model_input_and_model_response(api: Any) -> None:
    model_input = ["steve jobs is the [MASK] of apple"]  # the seed's own
    response = await seed_request(api, "demo%2Ftext-stats", model_input)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["id", "model_input", "model_response"]
    assert body["model_input"] == model_input
    assert body["model_response"]["words"] == 7
    record = await api.get(body["id"])  # recorded like any other prediction
    assert record["status"] == "succeeded"
    assert record["output"] == body["model_response"]
    assert record["input"] == {"text": "steve jobs is the [MASK] of apple"}


async def test_a_model_is_addressed_by_its_deployment_id_too(api: Any) -> None:
    model = (await api.http.get("/v1/models/demo/iris")).json()
    deployment_id = model["versions"][0]["deployment"]["id"]
    response = await seed_request(api, deployment_id, [[5.1, 3.5, 1.4, 0.2]])
    assert response.status_code == 200, response.text
    assert response.json()["model_response"]["label"] == [0]


async def test_named_inputs_go_as_an_object(api: Any) -> None:
    response = await seed_request(api, "fixtures/echo", {"text": "hi", "n": 3})
    assert response.status_code == 200, response.text
    assert response.json()["model_response"] == {"text": "hi", "n": 3}


async def test_a_model_still_deploying_answers_the_seeds_400(serve: Any) -> None:
    async with serve({"acme/slow": FIXTURES / "slow-setup"}, ready=False) as app:
        response = await seed_request(app, "acme%2Fslow", [1])
        assert response.status_code == 400
        assert response.json() == SEED_NOT_READY
        await app.wait_ready()


async def test_other_failures_use_the_same_envelope_with_their_message(api: Any) -> None:
    cases = [
        ("demo%2Fnope", ["x"], 404, "model 'demo/nope' not found"),
        ("0000beef", ["x"], 404, "deployment '0000beef' not found"),
        ("demo%2Ftext-stats", ["a", "b"], 400, "model_input: 2 items, but this model takes one"),
        (
            "demo%2Ftext-stats",
            [""],
            400,
            "invalid input: input.text: String should have at least 1",
        ),
        ("fixtures%2Fraises-in-predict", ["x"], 500, "the model failed: ValueError: boom"),
    ]
    for model_id, model_input, status, said in cases:
        response = await seed_request(api, model_id, model_input)
        assert response.status_code == status, (model_id, response.text)
        body = response.json()
        assert list(body) == ["error", "full_message"]
        assert body["error"].startswith(said), body
        assert body["full_message"] == [body["error"]]


async def test_a_body_without_model_input_is_400(api: Any) -> None:
    response = await api.http.post(
        "/model-deployment/v1/models/demo%2Firis/predict", json={"input": [1]}
    )
    assert response.status_code == 400
    assert response.json()["error"] == (
        "request body must be a JSON object with a 'model_input' field"
    )


async def test_the_seeds_fill_mask_request_runs_as_written(api: Any) -> None:
    model_input = ["steve jobs is the [MASK] of apple"]
    response = await seed_request(api, "demo%2Ffill-mask", model_input)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_input"] == model_input
    predictions = body["model_response"]["predictions"]
    assert len(predictions) == 5  # the seed's top 5
    vocabulary = (ROOT / "examples/models/demo/fill-mask/1/model/vocab.txt").read_text().split()
    for p in predictions:
        assert list(p) == ["score", "sequence", "token", "token_str"]
        assert p["token_str"] in vocabulary
        assert p["sequence"] == f"steve jobs is the {p['token_str']} of apple"
        assert 0 < p["score"] < 1
    scores = [p["score"] for p in predictions]
    assert scores == sorted(scores, reverse=True)


async def test_a_fill_mask_text_without_the_mask_is_a_user_error(api: Any) -> None:
    response = await seed_request(api, "demo%2Ffill-mask", ["steve jobs is the boss"])
    assert response.status_code == 400
    assert response.json()["error"] == (
        "invalid input: input.text: String should match pattern '^.*\\[MASK\\].*$'"
    )


async def test_a_long_text_is_cut_but_a_mask_past_the_cut_is_a_user_error(api: Any) -> None:
    long = " ".join(["steve jobs is the founder of apple"] * 30)  # 210 words; the model reads 128
    response = await seed_request(api, "demo%2Ffill-mask", [f"[MASK] {long}"])
    assert response.status_code == 200, response.text
    assert len(response.json()["model_response"]["predictions"]) == 5
    response = await seed_request(api, "demo%2Ffill-mask", [f"{long} [MASK]"])
    assert response.status_code == 400
    assert response.json()["error"] == (
        "invalid input: input.text: the text is 213 tokens long and this model reads at most "
        "128: its [MASK] falls past the cut, so nothing is left to fill; move it earlier or "
        "shorten the text"
    )
